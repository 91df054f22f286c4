import pytest
import torch

torch.set_num_threads(1)

REGISTER = """
import fusekit_transformers
from fusekit.engine.registry import get_registry

registry = get_registry()
if "wordllama" not in registry.names("backbone"):  # a source checkout: not installed
    registry.register(fusekit_transformers, "fusekit-transformers", "0.1.0")
"""


@pytest.fixture(autouse=True, scope="session")
def _registered():
    """The plugin's backbones in the registry, also where the distribution is not installed
    (its tests then run from the source folder); ``REGISTER`` does the same in a subprocess."""
    exec(REGISTER, {})  # noqa: S102 - the constant above


#: The words of the tiny tokenizer: the contract checks' texts ("w1 x2 w1") and the reviews.
WORDS = [f"w{i}" for i in range(10)] + [f"x{i}" for i in range(4)]
WORDS += ["great", "fun", "dull", "awful", "film", "a"]


def save_tiny_bert(folder, layers=2):
    """A random BERT (hidden 32, ``layers`` layers) with its fast WordPiece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    BertTokenizerFast(vocab={token: i for i, token in enumerate(tokens)}).save_pretrained(folder)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        initializer_range=0.2,  # larger than BERT's 0.02: texts give distinct vectors
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def save_tiny_vision(folder, kind, channels=3):
    """A random ViT (32 px, patches of 8) or ResNet with a processor configuration."""
    from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTImageProcessorPil, ViTModel

    torch.manual_seed(0)
    if kind == "vit":
        config = ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            num_channels=channels,
        )
        model = ViTModel(config)
    else:
        config = ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=channels
        )
        model = ResNetModel(config)
    model.save_pretrained(folder)
    ViTImageProcessorPil(
        size={"height": 32, "width": 32},
        image_mean=[0.5] * channels,
        image_std=[0.25] * channels,
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("models") / "bert")


@pytest.fixture(scope="session")
def vit(tmp_path_factory):
    return save_tiny_vision(tmp_path_factory.mktemp("models") / "vit", "vit")


@pytest.fixture(scope="session")
def resnet(tmp_path_factory):
    return save_tiny_vision(tmp_path_factory.mktemp("models") / "resnet", "resnet")


@pytest.fixture(scope="session")
def vit2(tmp_path_factory):
    """Two channels: the contract checks' images are (2, 4, 4)."""
    return save_tiny_vision(tmp_path_factory.mktemp("models") / "vit2", "vit", channels=2)


@pytest.fixture(scope="session")
def resnet2(tmp_path_factory):
    return save_tiny_vision(tmp_path_factory.mktemp("models") / "resnet2", "resnet", channels=2)
