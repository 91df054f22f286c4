"""Pretrained text and image encoders as fusekit backbones.

* ``wordllama``: WordLlama's token embeddings, shipped in the ``wordllama`` wheel (no download),
  mean-pooled over the real tokens, frozen by default
  (:mod:`fusekit_transformers.wordllama_backbone`);
* ``hf_text``: any local Hugging Face ``AutoModel`` text encoder with its tokenizer, cls or mean
  pooling, frozen, fine-tuned or trained in its last layers (:mod:`fusekit_transformers.hf_text`);
* ``hf_image``: any local ``AutoModel`` vision encoder over ``(n, C, H, W)`` arrays or image file
  paths, preprocessed as its image processor's configuration says
  (:mod:`fusekit_transformers.hf_image`).

The text backbones' input encoder is :class:`~fusekit_transformers.tokens.TokenizerEncoder`,
which stores the tokenizer file in the model; ``hf_text`` and ``hf_image`` store the model's
``config.json`` (and ``preprocessor_config.json``) too, so a saved model needs no folder.
``wordllama``, ``tokenizers`` and ``transformers`` are imported only
when a model is built or a text tokenized, never when fusekit loads its plugins.
"""

from fusekit.plugin import hookimpl
from fusekit_transformers.freezing import RECOMMENDED_LR, param_groups
from fusekit_transformers.hf_image import HFImageBackbone
from fusekit_transformers.hf_text import HFTextBackbone
from fusekit_transformers.tokens import TokenizerEncoder
from fusekit_transformers.wordllama_backbone import WordLlamaBackbone

__all__ = [
    "RECOMMENDED_LR",
    "HFImageBackbone",
    "HFTextBackbone",
    "TokenizerEncoder",
    "WordLlamaBackbone",
    "fusekit_backbones",
    "param_groups",
]


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"wordllama": WordLlamaBackbone, "hf_text": HFTextBackbone, "hf_image": HFImageBackbone}
