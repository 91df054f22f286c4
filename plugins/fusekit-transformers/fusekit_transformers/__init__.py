"""Pretrained text encoders as fusekit backbones.

* ``wordllama``: WordLlama's token embeddings, shipped in the ``wordllama`` wheel (no download),
  mean-pooled over the real tokens, frozen by default
  (:mod:`fusekit_transformers.wordllama_backbone`).

Their input encoder is :class:`~fusekit_transformers.tokens.TokenizerEncoder`, which stores the
tokenizer file in the model. ``wordllama``, ``tokenizers`` and ``transformers`` are imported only
when a model is built or a text tokenized, never when fusekit loads its plugins.
"""

from fusekit.plugin import hookimpl
from fusekit_transformers.tokens import TokenizerEncoder
from fusekit_transformers.wordllama_backbone import WordLlamaBackbone

__all__ = ["TokenizerEncoder", "WordLlamaBackbone", "fusekit_backbones"]


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"wordllama": WordLlamaBackbone}
