"""Generate ``docs/reference.md``, the method reference, from the plugin registry.

    .venv/bin/python docs/make_reference.py           # rewrite docs/reference.md
    .venv/bin/python docs/make_reference.py --check   # exit 1 when docs/reference.md is stale

Every registered plugin gets an entry: kind, providing distribution and class come from the
registry; the parameter list (name, type, default) from the class's ``__init__`` signature (a data
set's loader signature); parameter meanings from ``NOTES`` or, failing that, the class docstring's
``Parameters:`` section. Paper, equations and "when to use" are hand-written in ``NOTES`` below.
A plugin without notes still gets an entry (its docstring summary) and a warning on stderr, so a
newly installed plugin is never silently left out; add its notes here and rerun.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).with_name("reference.md")
#: The kinds of fusekit.plugin.KINDS in the order the reference presents them.
KIND_ORDER = ("fusion", "backbone", "calibration", "weighting", "dataset")
KIND_TITLES = {
    "fusion": "Fusions",
    "backbone": "Backbones",
    "calibration": "Calibrations",
    "weighting": "Weightings",
    "dataset": "Data sets",
}


@dataclass(frozen=True)
class Note:
    """Hand-written part of one entry (for a data set: paper = source, equations = modalities)."""

    paper: str
    equations: str
    when: str
    params: dict[str, str] = field(default_factory=dict)


SCFAE_PARAMS = {
    "n": "expansion factor of Eq. 3 (n·l_m expanded width)",
    "b": "share of the expanded code that is shared, split at s_m = round(b·n·l_m)",
    "lam": "λ, weight of the reconstruction loss (Eq. 6)",
    "recon": '"cos" (paper), "mse" or "contrastive" (InfoNCE on the shared projections)',
    "recon_act": '"gelu" or "identity" activation of P_recon',
    "recon_from": '"z" (paper: reconstruct from Z) or "post" (from the SwiGLU output)',
    "missing_shared": 'where the shared part comes from when the partner is absent: "zero", '
    '"self" or "next_present"',
    "detach_target": "stop the gradient through the reconstruction target V",
    "modality_order": "order of the cyclic swap (default: the modalities' order)",
    "swiglu": "keep the SwiGLU pre/post blocks",
    "structure": '"split" (expand/split/swap) or "linear" (one projection, ablation)',
    "branch": '"both", "shared" or "specific": which part reaches the head (ablation)',
    "zero_absent_outputs": "zero an absent modality's block of the fused vector",
    "temperature": "InfoNCE temperature (recon='contrastive')",
    "gradient_diagnostics": "record task/reconstruction gradient cosines in net_.history",
}
SCFAE_PAPER = (
    'Xiong et al., "Multimodal Fusion via Self-Consistent Task-Gradient Fields", arXiv:2410.15475'
)
BTW_PARAMS = {
    "level": '"bi" (KL × MI, Eq. 9), "local" (KL, Eq. 8), ablations "global_kl", "global_mi"',
    "unimodal": '"separate" (one unimodal copy trained per modality, the paper) or "heads" '
    "(cheap linear heads on detached features)",
    "unimodal_epochs": "epochs of each unimodal copy (default: the estimator's max_epochs)",
    "alpha": "initial EMA factor of Eq. 10",
    "alpha_step": "change of α after each update",
    "alpha_on_improve": '"increase" (paper prose) or "decrease" (authors\' code)',
    "update_every": "epochs between weight updates",
    "predict_weights": 'weights at predict: "mean" training weight, "recompute" or "ones"',
    "rescale": '"none" or "mean_one" (multiply ŵ by the number of present modalities)',
}
BTW_PAPER = (
    'Hou, Wang, Wang, "BTW: A Non-Parametric Variance Stabilization Framework for Multimodal '
    'Model Integration", Findings of EMNLP 2025, arXiv:2508.18551'
)
OGM_PAPER = (
    'Peng et al., "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022, '
    "arXiv:2203.15332"
)
WINDOW = {
    "start_epoch": "first epoch (0-based) in which the scheme acts",
    "end_epoch": "last epoch in which it acts (None: to the end)",
    "min_param_dim": "only encoder weights with at least this many dimensions are modulated",
}

NOTES: dict[tuple[str, str], Note] = {
    # -- fusions ---------------------------------------------------------------------------------
    ("fusion", "concat"): Note(
        "— (classic early / feature-level fusion)",
        "z = [mask_1·v_1; …; mask_M·v_M] (+ mask with `indicators`), width Σ_m D_m.",
        "The default and the baseline to beat; strong on tabular views. With absent modalities "
        "set `indicators=True` so the head can tell absent from an all-zero (mean) row.",
        {"indicators": "append the (B, M) presence mask to the fused vector"},
    ),
    ("fusion", "late"): Note(
        "— (classic decision-level fusion)",
        "z_m = W_m v_m + b_m; z = Σ_m a_m·mask_m·z_m / Σ_m a_m·mask_m, a_m = 1 or softmax(θ).",
        "Modalities that are informative on their own, many missing modalities, or when "
        "per-modality predictions should stay interpretable; no cross-modal interactions.",
        {"weights": '"mean" (a_m = 1) or "learned" (a = softmax(θ))'},
    ),
    ("fusion", "mmcosine"): Note(
        'Xu, Feng, Zhang, Hu, "MMCosine: Multi-Modal Cosine Loss Towards Balanced Audio-Visual '
        'Fine-Grained Learning", ICASSP 2023, arXiv:2303.05338 (written from the official code '
        "GeWu-Lab/MMCosine_ICASSP23)",
        "z_m = s · (h_m/‖h_m‖)(W_m/‖W_m‖_row)ᵀ per modality; z = Σ_m mask_m z_m, no bias; "
        "trained with the usual cross-entropy.",
        "Imbalanced modalities (one wins by feature norm) and fine-grained classes; a decision "
        "layer, so in fusekit a fusion that emits logits; classification only.",
        {"scaling": "s, the scale of the cosine logits (the code's 10)"},
    ),
    ("fusion", "sum"): Note(
        "— (additive fusion)",
        "u_m = act(W_m v_m + b_m); z = Σ_m mask_m·u_m.",
        "A cheap shared space for modalities of very different widths; the scale of z grows "
        "with the number present, so prefer `mean` when many samples miss modalities.",
        {
            "dim": "width of the common projection",
            "activation": '"none", "relu", "tanh" or "gelu" after the projection',
            "indicators": "append the (B, M) presence mask",
        },
    ),
    ("fusion", "mean"): Note(
        "— (additive fusion, averaged)",
        "u_m = act(W_m v_m + b_m); z = Σ_m mask_m·u_m / max(1, Σ_m mask_m).",
        "Like `sum`, but the fused scale does not depend on how many modalities a sample has: "
        "a good default when modalities are often missing.",
        {
            "dim": "width of the common projection",
            "activation": '"none", "relu", "tanh" or "gelu" after the projection',
            "indicators": "append the (B, M) presence mask",
        },
    ),
    ("fusion", "tensor"): Note(
        'Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis", EMNLP 2017 (TFN)',
        "u_m = W_m v_m + b_m (dim); z = vec([u_1; 1] ⊗ … ⊗ [u_M; 1]), width Π_m (dim + 1); "
        "an absent modality contributes [0; 1].",
        "Explicit multiplicative interactions between 2-3 modalities; the width is exponential "
        "in M, so for more modalities use `lowrank`.",
        {
            "dim": "projection width per modality before the outer product",
            "dropout": "dropout on the fused tensor",
            "max_width": "largest allowed fused width; above it a ValueError points to lowrank",
        },
    ),
    ("fusion", "lowrank"): Note(
        'Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors", '
        "ACL 2018 (LMF)",
        "h = Λ_m [Σ_{i=1}^r w_m^(i)·z_m], z_m = [v_m; 1] (Λ: element-wise product over "
        "modalities), ranks combined by a learned weighted sum.",
        "TFN's interactions at a cost linear in M: the tensor-style method for more than 3 "
        "modalities or wide features.",
        {"rank": "r, rank of the weight-tensor decomposition", "dim": "output width"},
    ),
    ("fusion", "gated"): Note(
        'Arevalo et al., "Gated Multimodal Units for Information Fusion", ICLR workshop 2017 (GMU)',
        "h_m = tanh(W_m v_m); g_m = W_zm [v ⊙ mask; mask]; z_m = softmax over present m of g_m; "
        "h = Σ_m z_m ⊙ h_m (M = 2: the paper's σ gate).",
        "When the useful modality changes from sample to sample (per-feature, per-sample "
        "selection), with a light parameter count.",
        {"dim": "width of the tanh projections and of the output"},
    ),
    ("fusion", "attention"): Note(
        'Hori et al., "Attention-Based Multimodal Fusion for Video Description", ICCV 2017; '
        'learned query as in Yang et al., "Hierarchical Attention Networks", NAACL 2016',
        "u_m = tanh(W_m v_m); e_m = qᵀ tanh(W_a u_m); α = softmax over present m of e; "
        "z = Σ_m α_m u_m.",
        "Per-sample modality weights you can inspect (`output.diagnostics"
        '["modality_attention"]`); a scalar weight per modality rather than per feature.',
        {"dim": "width of u_m and of the output", "attention_dim": "hidden width of the scorer"},
    ),
    ("fusion", "crossmodal"): Note(
        'Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", '
        "ACL 2019 (MulT)",
        "For each ordered pair β→α: Z ← CM(LN(Z), LN(X_β)) + LN(Z), CM = softmax(Q_α K_βᵀ/√d) V_β, "
        "then FFN; targets pooled over real steps and concatenated with the mask.",
        "Unaligned sequences (sensors, audio/video/text) where steps of one modality should "
        "attend to another's; cost grows as M·(M−1) pair blocks.",
        {
            "dim": "token width",
            "heads": "attention heads",
            "layers": "crossmodal layers per pair",
            "dropout": "attention and FFN dropout",
        },
    ),
    ("fusion", "embracenet"): Note(
        'Choi & Lee, "EmbraceNet: A robust deep learning architecture for multimodal '
        'classification", Information Fusion 2019',
        "d_m = ReLU(W_m v_m); each feature i of e is d_{m,i} of one present modality drawn with "
        "p uniform over the present ones; at predict e = mean of the present d_m.",
        "Robustness to missing or corrupted modalities is the goal: training already forces "
        "every feature to work from any single modality.",
        {"dim": "width of the docking layers and of the output"},
    ),
    ("fusion", "maxout"): Note(
        'Goodfellow et al., "Maxout Networks", ICML 2013, applied across modalities',
        "p_m = W_m v_m + b_m; z_j = max over present m of p_{m,j}.",
        "Mainly the worked example of a plugin distribution (`plugins/fusekit-example/`); a "
        "simple order-free alternative to `mean`.",
        {"width": "projection and output width"},
    ),
    ("fusion", "moe"): Note(
        'Han et al., "FuseMoE: Mixture-of-Experts Transformers for Fleximodal Fusion", NeurIPS '
        "2024 (the host model of BTW)",
        "t_m = P_m v_m; per layer t_m ← t_m + Σ_{e∈TopK(r_m)} g_{m,e} E_e(LN(t_m)), "
        "r_m = R_m LN(t_m); + Switch load-balancing loss; z = [t_1; …; t_M].",
        "Many heterogeneous modalities where different experts should specialise; pairs "
        'naturally with `weighting="btw"`.',
        {
            "width": "token width W",
            "n_experts": "experts shared by all modalities",
            "top_k": "experts used per token",
            "expert_hidden": "hidden width of each expert FFN",
            "n_layers": "MoE layers",
            "balance": "weight of the load-balancing loss",
        },
    ),
    ("fusion", "scfae"): Note(
        SCFAE_PAPER,
        "Ẑ^(m) = P_expand U^(m) split into shared/specific; "
        "Z_sh^(m) = P_shared Ẑ_sh^((m+1) mod M), Z^(m) = [Z_sp; Z_sh] (Eqs. 3-4); "
        "L = L_task + λ Σ_m (1 − cos(V^(m), P_recon Z^(m))) (Eqs. 5-6).",
        "Modalities that share information (views of one object): the cyclic swap and "
        "reconstruction align them. Recommends Adam at lr 3e-3 (no normalisation layer; "
        'Adam at 0.01 diverges), used while `lr` is `"auto"`.',
        SCFAE_PARAMS,
    ),
    ("fusion", "scfae_no_recon"): Note(
        SCFAE_PAPER + ", Table 8 ablation",
        "SCFAE with λ = 0 (no reconstruction loss).",
        "Ablation: measures what the reconstruction term adds.",
        SCFAE_PARAMS,
    ),
    ("fusion", "scfae_no_expand"): Note(
        SCFAE_PAPER + ", Table 8 ablation",
        "SCFAE with n = 1 (no expansion).",
        "Ablation: measures what the expansion adds.",
        SCFAE_PARAMS,
    ),
    ("fusion", "scfae_mse"): Note(
        SCFAE_PAPER + ", Table 9 ablation",
        "SCFAE with L_recon = MSE(sg(V^(m)), P_recon Z^(m)) instead of the cosine loss; sg = "
        "stop-gradient on the target (detach_target=True; the undetached MSE lets trainable "
        "encoders shrink V, see the plugin README).",
        "Ablation of the reconstruction loss's form (compare with scfae and "
        "fusion__detach_target=True).",
        SCFAE_PARAMS,
    ),
    ("fusion", "scfae_contrastive"): Note(
        SCFAE_PAPER + ", Table 8 ablation",
        "SCFAE with InfoNCE on the shared projections instead of reconstruction.",
        "Ablation: contrastive alignment in place of reconstruction.",
        SCFAE_PARAMS,
    ),
    ("fusion", "linear_proj"): Note(
        SCFAE_PAPER + ', Table 8 ablation "Linear Proj."',
        "SCFAE with one projection per modality instead of expand/split/swap "
        "(reconstruction kept).",
        "Ablation: measures what the shared/specific structure adds.",
        SCFAE_PARAMS,
    ),
    ("fusion", "scfae_paper"): Note(
        SCFAE_PAPER + ", §5 training schedule",
        "SCFAE (same equations and defaults) recommending the paper's schedule: AdamW, linear "
        "warm-up over 20 % of the steps from 0.05 x the peak lr, cosine decay to 0, per batch.",
        "SCFAE trained as in the paper (peak lr 1e-2 from the sweep; the paper's 5e-4 needs "
        "many more steps).",
        SCFAE_PARAMS,
    ),
    # -- backbones -------------------------------------------------------------------------------
    ("backbone", "identity"): Note(
        "—",
        "h = x.",
        "Pre-extracted features that need no encoder, or to let a calibration or fusion see "
        "the raw inputs (as VGMR's paper does).",
    ),
    ("backbone", "mlp"): Note(
        "—",
        "h ← Dropout(act(Norm(W h + b))), `depth` times; sequences per step, images flattened.",
        "Tabular / vector modalities (the default backbone).",
        {
            "hidden": "width of each layer",
            "depth": "number of layers",
            "dropout": "dropout after each layer",
            "norm": 'None, "layer" or "batch" normalisation',
            "activation": '"relu", "gelu", "tanh" or "silu"',
        },
    ),
    ("backbone", "conv1d"): Note(
        "— (temporal CNN)",
        "h^(l) = Dropout(act(Conv1d_k(h^(l−1)))), same padding, padded steps zeroed before "
        "every layer; (B, T, d) → (B, T, hidden).",
        "Sequences with local patterns (sensor signals); fast and order-aware within "
        "`kernel_size`.",
        {
            "hidden": "channels of each layer",
            "depth": "number of layers",
            "kernel_size": "temporal kernel width",
            "dropout": "dropout after each layer",
            "activation": '"relu", "gelu", "tanh" or "silu"',
        },
    ),
    ("backbone", "categorical"): Note(
        'Guo & Berkhahn, "Entity Embeddings of Categorical Variables", arXiv 1604.06737, 2016; '
        'token form as the feature tokenizer of Gorishniy et al., "Revisiting Deep Learning '
        'Models for Tabular Data", NeurIPS 2021',
        "column j's code c_j ∈ {0 (unseen / missing), 1..n_j} → E_j[c_j] ∈ R^{D_j}; "
        "vector: [E_1[c_1]; …; E_k[c_k]] (B, Σ D_j); tokens: (B, k, D). D_j = embedding_dim, "
        "else fastai's min(600, round(1.6 (n_j + 1)^0.56)).",
        "Categorical columns (labels or integer codes) with many levels, instead of one-hot "
        "features; tokens for attention fusions.",
        {
            "embedding_dim": "width of every column's embedding; None: fastai's rule per column",
            "output": '"vector" (concatenated) or "tokens" (one per column)',
            "dropout": "dropout on the embeddings",
        },
    ),
    ("backbone", "hashed_text"): Note(
        'Joulin et al., "Bag of Tricks for Efficient Text Classification", EACL 2017 (the '
        "hashing trick of fastText)",
        "text → word n-grams g (scikit-learn's analyzer, ngram_range) → ids "
        "MurmurHash3(g) mod n_buckets + 1 (0 pads) → mean of E[id] over the real n-grams, "
        "(B, dim); no n-gram: zeros.",
        "Text columns without a download or a vocabulary to fit; a fast, small baseline.",
        {
            "n_buckets": "hash buckets (embedding rows, plus one for padding)",
            "dim": "embedding width",
            "ngram_range": "(low, high) word n-gram lengths",
            "max_tokens": "n-grams kept per text (unigrams first)",
            "dropout": "dropout on the mean",
            "empty_is_missing": "a blank text is an absent row",
        },
    ),
    ("backbone", "wordllama"): Note(
        'Miller, "WordLlama" (2024), token embeddings extracted from Llama 2 and trained for '
        "sentence similarity (l2_supercat, shipped in the wordllama wheel)",
        "text → Llama 2 token ids t_1..t_L (L ≤ max_length) → (1/L) Σ_i E[t_i, :dim] → "
        "dropout → optional Linear(dim, projection); no token: zeros. E frozen by default.",
        "Text columns with real pretrained embeddings, offline; frozen for small data, "
        "fine-tuned (freeze=False) with more.",
        {
            "dim": "dimensions kept (Matryoshka: 64, 128 or 256)",
            "max_length": "tokens kept per text",
            "freeze": "keep the embedding matrix fixed (a float16 buffer)",
            "projection": "width of a trainable Linear after pooling; None: none",
            "dropout": "dropout on the pooled vector",
            "empty_is_missing": "a blank text is an absent row",
        },
    ),
    ("backbone", "hf_text"): Note(
        'Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language '
        'Understanding", NAACL 2019 (any local Hugging Face AutoModel text encoder)',
        "text → the model's tokenizer: [CLS] t_1..t_L [SEP] (≤ max_length) → encoder → "
        "h_[CLS] (pooling='cls') or (1/L) Σ_i h_i over the real tokens ('mean'); no token: "
        "zeros. Frozen, fine-tuned, or only the last k layers trained.",
        "Text columns with a pretrained transformer from a local folder or the local cache; "
        "frozen for small data (encoded once per fit), fine-tuned at lr ~2e-5 with more.",
        {
            "path": "the model's folder, or its id in the local Hugging Face cache (offline)",
            "pooling": '"cls" (first token) or "mean" (over the real tokens)',
            "max_length": "tokens kept per text, special tokens included",
            "freeze": "True: all fixed; False: all trained; k: all but the last k layers fixed",
            "empty_is_missing": "a blank text is an absent row",
        },
    ),
    ("backbone", "hf_image"): Note(
        'Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021 (any local Hugging Face '
        "AutoModel vision encoder: ViT, DINOv2, CLIP vision, ResNet, ConvNeXt)",
        "image (array in [0, 1] or file) → resize / crop / rescale / normalise as the model's "
        "preprocessor_config.json says → encoder → pooled output (pooling='pooler'), mean "
        "of the last hidden state ('mean') or its first token ('cls').",
        "Image columns (paths or arrays) with a pretrained vision encoder, offline; frozen "
        "by default (encoded once per fit).",
        {
            "path": "the model's folder, or its id in the local Hugging Face cache (offline)",
            "pooling": '"pooler", "mean" or "cls" (transformers only)',
            "freeze": "True: all fixed; False: all trained; k: all but the last k layers fixed",
        },
    ),
    ("backbone", "gru"): Note(
        'Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder", EMNLP 2014',
        "GRU over the real steps (packed), hidden state at every step; (B, T, d) → (B, T, H), "
        "H = hidden (2·hidden bidirectional).",
        "Sequences where order and long-range state matter; ragged (NaN-padded) recordings.",
        {
            "hidden": "hidden size",
            "layers": "stacked GRU layers",
            "bidirectional": "also run the sequence backwards",
            "dropout": "dropout between layers",
        },
    ),
    ("backbone", "transformer"): Note(
        'Vaswani et al., "Attention Is All You Need", NeurIPS 2017',
        "x_t → W x_t + PE(t); `layers` × pre-norm [softmax(QKᵀ/√d_k + mask) V (Eq. 1), FFN "
        "(Eq. 2)]; padded steps masked as keys.",
        "Longer sequences with non-local dependencies, given enough data.",
        {
            "dim": "model width",
            "heads": "attention heads",
            "layers": "encoder layers",
            "dropout": "dropout",
        },
    ),
    ("backbone", "cnn2d"): Note(
        "— (LeNet-style, LeCun et al. 1998)",
        "`depth` × (Conv3×3 → BatchNorm → ReLU → MaxPool2), global average pool; "
        "(B, C, H, W) → (B, channels).",
        "Small images (C, H, W) as one modality.",
        {
            "channels": "channels of every conv layer (= output width)",
            "depth": "conv blocks",
            "batch_norm": "BatchNorm after each conv",
        },
    ),
    # -- calibrations ----------------------------------------------------------------------------
    ("calibration", "none"): Note("—", "h'_m = h_m.", "The default: no pre-fusion refinement."),
    ("calibration", "vgmr"): Note(
        'Liu, Zheng, Zhang, Wang, Chen, "Before Fusion, Ask What to Keep: Contextual Calibration '
        'of Multimodal Signals", arXiv:2606.02679, 2026 (VGMR)',
        "G_m = σ(ρ^x(X_m) + ρ^h(H_m) + ρ^g(g'_m) + ρ^p(p'_m)) (Eq. 11), "
        "G̃_m = 1 + α(1 − β)(2G_m − 1) (Eqs. 12-13), X̃_m = Dropout(LayerNorm(X_m ⊙ G̃_m)); "
        "L = L_task + λ_v L_value + λ_r L_reg.",
        "Before any fusion when some modality may be noisy or uninformative for a sample: it "
        "gates each modality's features using the others as context. Composes with any "
        'weighting (`calibration="vgmr", weighting="ogm_ge"`).',
    ),
    # -- weightings ------------------------------------------------------------------------------
    ("weighting", "none"): Note("—", "L = mean ℓ(z, y).", "The default: plain joint training."),
    ("weighting", "static"): Note(
        "— (learned global modality weights)",
        "a_im = mask_im e^{θ_m} / Σ_j mask_ij e^{θ_j}; h'_im = n_i·a_im·h_im.",
        "A learned global importance per modality you can read off; or fixed prior weights "
        "with `learnable=False`.",
        {
            "learnable": "learn θ (False: keep the initial logits)",
            "init": "initial logits {modality: θ_m} (0 when not given)",
        },
    ),
    ("weighting", "modality_dropout"): Note(
        'Neverova, Wolf, Taylor, Nebout, "ModDrop: adaptive multi-modal gesture recognition", '
        "TPAMI 2016",
        "In training mask'_im = mask_im·1[u_im ≥ p], u ~ U(0, 1) (one present modality kept with "
        "`keep_one`); prediction unchanged.",
        "Modalities will be missing at test time: the cheapest robustness to absent inputs.",
        {
            "p": "probability of dropping each present modality",
            "keep_one": "never drop every present modality of a sample",
        },
    ),
    ("weighting", "unimodal_aux"): Note(
        "— (AutoGluon's `loss_weight`; UDML's L_uni; the base of G-Blending)",
        "L = ℓ̄(z) + λ Σ_m L_m, L_m = mean of ℓ(z_m, y) over the rows where m is present.",
        "One modality dominates and the others stay under-trained; also prepares the model "
        "for missing modalities at test time.",
        {"weight": "λ"},
    ),
    ("weighting", "gradient_blending"): Note(
        'Wang, Tran, Feiszli, "What Makes Training Multi-modal Classification Networks Hard?", '
        "CVPR 2020, arXiv:1905.12681 (G-Blending)",
        "L = Σ_k w_k L_k over k ∈ {fused, m_1..m_M}; w_k ∝ |ΔG_k| / ΔO_k² (Eq. 6), estimated on "
        "a held-out split every `super_epoch` epochs.",
        "Multimodal training overfits faster than the best unimodal model; costs extra "
        "training of network copies at each estimate.",
        {
            "super_epoch": "epochs between weight estimates",
            "validation_fraction": "share of training rows held out to estimate the weights",
            "estimate_epochs": "epochs each copy trains to estimate ΔG and ΔO",
        },
    ),
    ("weighting", "ogm_ge"): Note(
        OGM_PAPER + " (OGM-GE)",
        "s_m = Σ_i softmax(z_m,i)[y_i] (Eq. 9), ρ_m = s_m / s_other, k_m = 1 − tanh(α ρ_m) if "
        "ρ_m > 1 (Eq. 10); encoder gradients g ← k_m g + N(0, std(g)²) (Eq. 11).",
        "One modality learns much faster than the others (modality imbalance); the paper "
        "trains with SGD, where gradient scales act most directly.",
        {
            "alpha": "α, strength of the modulation",
            "noise": "add the generalisation-enhancement noise",
            "unimodal": '"split_head" (split the concat head, the official code), "heads" (linear '
            'probes on detached features) or "auto" (split when the fusion is concat)',
            **WINDOW,
        },
    ),
    ("weighting", "qmf"): Note(
        'Zhang et al., "Provable Dynamic Fusion for Low-Quality Multimodal Data", ICML 2023, '
        "arXiv:2306.02050 (QMF)",
        "E_m = −log Σ_k exp(z_m,k), w_m = −E_m / T, z = Σ_m mask_m·sg(w_m)·z_m; "
        "L = Σ_m CE(z_m) + CE(z) + λ Σ_m L_rank,m (ranking against the loss history).",
        "Per-sample modality quality varies (noisy sensors); replaces the fusion's logits by "
        "its own confidence-weighted late fusion.",
        {
            "lam": "λ, weight of the ranking loss",
            "temperature": "T of the confidence",
            "detach_confidence": "stop the fused loss's gradient at w_m (the text-image code); "
            "False: the RGB-D code",
        },
    ),
    ("weighting", "tmc"): Note(
        'Han, Zhang, Fu, Zhou, "Trusted Multi-View Classification", ICLR 2021, arXiv:2102.02051',
        "e_m = softplus(z_m), α_m = e_m + 1, b_m = e_m/S_m, u_m = K/S_m (Eq. 1); opinions "
        "combined by reduced Dempster–Shafer (Eq. 2); evidential loss with annealed KL (Eq. 8).",
        "Classification where calibrated per-view uncertainty matters; an absent view is the "
        "vacuous opinion.",
        {"annealing_epochs": "epochs over which the KL weight grows to 1"},
    ),
    ("weighting", "energy"): Note(
        'Liu, Wang, Owens, Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020, '
        "arXiv:2010.03759",
        "E_m = −T log Σ_k exp(z_m,k / T); a_i = softmax over present m of −E_im / τ; "
        "h'_im = n_i·a_im·h_im; heads trained with `aux_weight`·Σ_m L_m.",
        "A cheap per-sample confidence weighting; beware that strong input noise can lower "
        "the energy (see docs/weightings.md).",
        {
            "temperature": "T of the energy score",
            "weight_temperature": "τ of the softmax over modalities",
            "aux_weight": "weight of the unimodal head losses",
            "detach": "do not train through the weights",
        },
    ),
    ("weighting", "prob_embedding"): Note(
        'Chang, Lan, Yao, Wei, "Data Uncertainty Learning in Face Recognition", CVPR 2020 (DUL)',
        "log σ²_m = W_m μ_m + c_m; s_m = μ_m + σ_m ⊙ ε in training (Eq. 2), KL to N(0, I) (Eq. 4); "
        "a_im ∝ 1 / mean_d σ²_im over present modalities.",
        "Per-sample inverse-variance weighting when a modality's noise level varies.",
        {"kl_weight": "λ of the KL regulariser", "sample": "sample s_m in training"},
    ),
    ("weighting", "pmr"): Note(
        'Fan et al., "PMR: Prototypical Modal Rebalance for Multimodal Learning", CVPR 2023, '
        "arXiv:2211.07089",
        "p_m = softmax(−‖h_m − c_m,k‖); s_m = mean p_m[y]; β_m = clip(max_j s_j/s_m − 1, 0, 1), "
        "γ_m = clip(s_m/min_j s_j − 1, 0, 1); L = L_task + α Σ β_m L_PCE,m − μ Σ γ_m H(p_m).",
        "Modality imbalance in classification, through the loss (works with any optimiser).",
        {
            "alpha": "α, weight of the prototypical cross-entropy",
            "mu": "μ, weight of the prototype-entropy term",
            "momentum": "μ_c, momentum of the prototypes",
            "entropy_epochs": "epochs in which the entropy term is used",
            **WINDOW,
        },
    ),
    ("weighting", "agm"): Note(
        'Li et al., "Boosting Multi-modal Model Performance with Adaptive Gradient Modulation", '
        "ICCV 2023, arXiv:2308.07686",
        "φ_m = Shapley mono-modal response from masked passes; r_m = exp(M/(M−1)(s̄ − s_m)), "
        "η_m the same on the running means from before the batch; encoder gradients × "
        "exp(α min(η_m − r_m, c_M)), c_2 = 10, c_M = 7 for M ≥ 3 (authors' code).",
        "Modality imbalance with any fusion (not only late fusion); costs 2^M − 2 extra fusion "
        "passes per batch (no encoder passes).",
        {"alpha": "α, strength of the modulation", **WINDOW},
    ),
    ("weighting", "mmpareto"): Note(
        'Wei & Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", '
        "ICML 2024, arXiv:2405.17730",
        "L = L_mm + Σ_m L_m; per encoder, if cos(g_mm, g_m) ≤ 0 take the min-norm (MGDA) "
        "combination, else equal weights; gradient ← γ·max(1, ‖g‖/‖d‖)·d.",
        "Unimodal losses help but conflict with the multimodal one.",
        {"gamma": "γ, magnitude enlargement"},
    ),
    ("weighting", "mla"): Note(
        'Zhang, Latham, Yao, "Multimodal Representation Learning by Alternating Unimodal '
        'Adaptation", CVPR 2024, arXiv:2311.10707',
        "One modality per step through a shared head z_m = W a_m(h_m) + b, head gradient "
        "∇W ← ∇W + ∇W Pᵀ (OWM-style); predict z = Σ_m softmax(−entropy)_m z_m.",
        "Strong imbalance in classification: modalities never compete inside one step.",
        {"shared_dim": "width of the shared head input (default: the widest modality)"},
    ),
    ("weighting", "opm"): Note(
        'Wei, Hu, Du, Wen, "On-the-fly Modulation for Balanced Multimodal Learning", IEEE TPAMI '
        "2024, arXiv:2410.11582 (OPM; written from the official code GeWu-Lab/BML_TPAMI2024)",
        "s_m = mean softmax(z_m)[y]; ρ_m = s_m / s_other; q_m = clip(q_base (1 + λ tanh(ρ_m − 1)), "
        "0, 1) if ρ_m > 1 else 0; with probability p_exe per batch, k_i,m ~ Bernoulli(1 − q_m) "
        "and fusion gets k_i,m h_i,m / (1 − θ), θ = Σ d_m q_m / Σ d_m (training only).",
        "One modality learns much faster than the others (modality imbalance) and the fix "
        "should act in the forward pass, with any optimiser; classification only.",
        {
            "q_base": "base drop probability of the dominant modality",
            "lam": "λ, how much the discrepancy ratio raises the drop probability",
            "p_exe": "probability that a training batch is modulated at all",
            "warmup_epochs": "epochs of plain training before the modulation starts",
            "unimodal": '"split_head" (split the concat head, the official code), "heads" (linear '
            'probes on detached features) or "auto" (split when the fusion is concat)',
        },
    ),
    ("weighting", "cml"): Note(
        'Ma, Zhang, Zhang, Wu, Fu, Zhou, Hu, "Calibrating Multimodal Learning", ICML 2023, '
        "arXiv:2306.01265 (written from the official code QingyangZhang/CML and BalanceBenchmark)",
        "Conf(S) = max softmax v(S) with only S present; nested subsets S_0 = N ⊃ … ⊃ S_{M−1} "
        "in a random order per epoch; L = L_task + Σ_j CE(v(S_j)) + λ Σ_j Σ_i "
        "ReLU((Conf(S_j)_i − Conf(S_{j−1})_i) σ_ij), σ = 0 when the smaller set is right and the "
        "larger wrong (training only).",
        "The model should not be more confident with a modality missing (calibrated confidences "
        "under missing or corrupted modalities); classification only; M − 1 extra fuse passes.",
        {
            "lam": "λ, weight of the summed confidence penalty",
            "subset_loss": "add each subset's cross-entropy (BalanceBenchmark's objective)",
            "sign_trick": "exempt a right smaller set with a wrong larger one (official code)",
            "start_epoch": "first epoch (0-based) of the regulariser",
            "end_epoch": "last epoch of the regulariser (None: to the end)",
        },
    ),
    ("weighting", "umt"): Note(
        'Du, Teng, Li, Liu, Yuan, Wang, Yuan, Zhao, "On Uni-Modal Feature Learning in Supervised '
        'Multi-Modal Learning", ICML 2023, arXiv:2305.01233 (UMT; written from BalanceBenchmark)',
        "Teachers first: a copy of the network trained on each modality alone (others absent); "
        "then L = L_task + s Σ_m MSE(t_m(x_m), h_m) over present rows, t_m the frozen teacher's "
        "encoder output, h_m the network's (training only).",
        "Joint training under-learns each modality's own features (modality laziness) and the "
        "modalities carry mostly uni-modal information; costs M teacher fits up front.",
        {
            "scaling": "s, weight of the feature distillation",
            "teacher_epochs": "epochs each teacher trains (None: the fit's max_epochs)",
            "start_epoch": "first epoch (0-based) of the distillation",
            "end_epoch": "last epoch of the distillation (None: to the end)",
        },
    ),
    ("weighting", "relearning"): Note(
        'Wei, Li, Feng, Hu, "Diagnosing and Re-learning for Balanced Multimodal Learning", ECCV '
        "2024, arXiv:2407.09705 (D&R; written from the official code "
        "GeWu-Lab/Diagnosing_Relearning_ECCV2024)",
        "Every reinit_epoch epochs (at most reinit_num times): per modality, KMeans (K classes) "
        "on MinMax-scaled encoder outputs of the training and held-out rows, purity P of each; "
        "α_m = tanh(λ |P(train) − P(held-out)|); θ_m ← α_m θ_m(0) + (1 − α_m) θ_m for encoder m.",
        "Imbalanced modalities where a weak modality should not be forced to memorise noise: "
        "each encoder is softly re-initialised by its own over-fitting; classification only.",
        {
            "move_lambda": "λ, how strongly the purity gap turns into re-initialisation",
            "reinit_epoch": "epochs between diagnoses (the first after epoch reinit_epoch)",
            "reinit_num": "how many re-initialisations at most",
            "validation_fraction": "rows held out for the diagnosis when the fit has no "
            "validation split (never trained on)",
        },
    ),
    ("weighting", "amco"): Note(
        'Zhou, Liang, Zheng, Xuan, Kumada, "Adaptive Mask Co-Optimization for Modal Dependence '
        'in Multimodal Learning", ICASSP 2023 (AMCo; as BalanceBenchmark implements it)',
        "z_m = h_m W_mᵀ + b / M from the concat head; a dependent modality's z_m is multiplied "
        "by a class mask with ⌊sin(π/2 · min(ε, l_t)/ε) K⌋ random zeros; logits = L*(Σ_m z̃_m); "
        "L = CE(logits) + Σ_m CE(z̃_m); dependent: softmax share of [z̃_1 … z̃_M] > σ "
        "(training only; L* always decides).",
        "One modality dominates the fused decision and should be taken out of it for a while; "
        "classification with fusion='concat' only.",
        {
            "sigma": "σ, the softmax share above which a modality counts as dependent",
            "eps": "ε, the progress at which the class mask covers every class",
            "start_epoch": "first epoch (0-based) of the masking and unimodal losses",
            "end_epoch": "last epoch of the masking (None: to the end)",
        },
    ),
    ("weighting", "mbsd"): Note(
        "BalanceBenchmark's MBSD objective (GeWu-Lab/BalanceBenchmark, MBSD_trainer.py; the code "
        "names no paper)",
        "Per pair of modalities, t_m = softmax(z_m)[y], s = max t, w = min t, g = s − w where "
        "either predicts y (else 0); L = L_task + Σ_m CE(z_m) + mean_pairs mean_i g (w (log w − s) "
        "+ (1/K) ‖z_j − z_l‖²) (training only).",
        "Unimodal predictions should agree where one modality is right, the weaker pulled "
        "towards the stronger; classification only.",
        {
            "start_epoch": "first epoch (0-based) of the extra terms",
            "end_epoch": "last epoch of the extra terms (None: to the end)",
            "kl_input": '"probability" (the code: s passed to kl_div as is) or "log" (log s)',
            "unimodal": '"split_head" (split the concat head, the code), "heads" (unimodal '
            'heads, any fusion) or "auto" (split when the fusion is concat)',
        },
    ),
    ("weighting", "lfm"): Note(
        'Yang, Wan, Jiang, Xu, "Facilitating Multimodal Classification via Dynamically Learning '
        'Modality Gap", NeurIPS 2024 (LFM; as BalanceBenchmark implements it)',
        "L = 2 (α_0 CE(z) + α_1 mean_pairs A(p_j, p_l)), A = ½[KL(r ‖ p_j) + KL(r ‖ p_l)], "
        "r = ½(p_j + p_l) of the unimodal predictions; once per epoch α_1 ← clip(α_1 − η γ, "
        "0.05, 0.95), γ = mean of (∇² L_tot · ∇ CE) for the first encoder weight (training only).",
        "Modalities converge at different rates and aligning their predictions should help the "
        "slow one; the weight of the alignment is learned; classification only.",
        {
            "lr_alpha": "η, the step size of the α update (halved every 20 epochs)",
            "unimodal": '"split_head" (split the concat head, the code), "heads" (unimodal '
            'heads, any fusion) or "auto" (split when the fusion is concat)',
        },
    ),
    ("weighting", "greedy"): Note(
        'Wu, Jastrzębski, Cho, Geras, "Characterizing and Overcoming the Greedy Nature of '
        'Learning in Multi-modal Deep Neural Networks", ICML 2022, arXiv:2202.05306 (written '
        "from the official code nyukat/greedy_multimodal_learning)",
        "u(m | rest) = (A(ŷ) − A(ŷ without m)) / A(ŷ) from masked fuse passes; "
        "μ_m = Σ_t ‖∇θ_m‖² / ‖θ_m‖² over encoder m; d = 2 log10(μ_max / μ_min); if d > α, "
        "the next Q steps hold the other modalities' features at their running mean, so only "
        "the slower encoder learns (training only).",
        "One modality is learnt greedily and the fix should act on which encoder learns, with "
        "any fusion; the utilisation rates measure the imbalance on the training batches.",
        {
            "alpha": "α, threshold on the speed imbalance d that starts re-balancing steps",
            "window": "Q, re-balancing steps after each trigger",
            "warmup_epochs": "epochs of plain training before re-balancing may start",
            "utilization": "measure u(m | rest) on every training batch (M + 1 fuse passes)",
        },
    ),
    ("weighting", "reconboost"): Note(
        'Hua, Xu, Bao, Yang, Huang, "ReconBoost: Boosting Can Achieve Modality Reconcilement", '
        "ICML 2024, arXiv:2405.09321 (written from the official code huacong/ReconBoost and "
        "BalanceBenchmark)",
        "Stages cycle over the modalities: phase 1 trains learner f_m (fusion and head on m "
        "alone) on mean (w₁ − w₂ softmax(F_{−m})[y]) CE(f_m, y) / K, F_{−m} = ρ·(the network "
        "without m, no gradient), + α MSE(softmax f_m, softmax f_prev); phase 2 trains "
        "everything on CE(ρ·logits).",
        "A dominant modality keeps the others from learning in joint training and training "
        "one modality at a time, on what the others get wrong, is affordable; classification "
        "only; one or two extra decision passes per batch in phase 1.",
        {
            "weight1": "w₁, weight of the learner's cross-entropy",
            "weight2": "w₂, how much a row the other modalities already get right weighs less",
            "alpha": "α, weight of the consolidation MSE (0: the official codes' effect)",
            "boost_rate": "initial value of the learnt scale ρ of the ensemble's logits",
            "boost_epochs": "epochs of phase 1 (one modality) per stage",
            "rectify_epochs": "epochs of phase 2 (every parameter) per stage",
        },
    ),
    ("weighting", "sample_valuation"): Note(
        'Wei, Feng, Wang, Hu, "Enhancing Multimodal Cooperation via Sample-level Modality '
        'Valuation", CVPR 2024, arXiv:2309.06255 (written from the official code '
        "GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation and BalanceBenchmark)",
        "Each epoch after the warm-up, per training row: v(S) = |S|·1[ŷ(S) = y] from masked "
        "eval passes, φ_m its Shapley values; c_m = 1, 2, 3 copies for φ_m in (0.4, 1), "
        "(−0.1, 0.4), below −0.1; L = L_task + Σ_i Σ_m c_im CE(v({m})_i) / B (the copies, "
        'each with only m present). level="modality": one rate s = α·2/3·Σ_{j<l}|g_j − g_l|/(M−1) '
        "from the gaps g_m = 1 − mean φ_m on a random part of the rows, ⌊s·n⌋ random rows "
        "copied with only the lagging modality.",
        "The modality that lags differs from sample to sample (no dataset-level dominance) "
        "and 2^M − 1 prediction passes over the training rows per epoch are affordable; "
        "classification only; needs every training row (no partial_fit).",
        {
            "warmup_epochs": "epochs of plain training before the first valuation",
            "value": '"count" (|S| when right, the official code) or "correct" (1 when right, '
            "BalanceBenchmark)",
            "level": '"sample" (copies per row from its own φ) or "modality" (one re-sampling '
            "rate from the mean contributions, the paper's coarser method)",
            "part_ratio": "share of the rows (drawn with replacement) whose mean φ sets the "
            "modality-level rate",
            "alpha": "scale of the modality-level re-sampling rate (official default 1)",
        },
    ),
    ("weighting", "arl"): Note(
        'Wei, Luo, Luo, "Improving Multimodal Learning via Imbalanced Learning", ICCV 2025, '
        "arXiv:2507.10203 (ARL, Asymmetric Representation Learning; written from the official "
        "code shicaiwei123/ICCV2025-ARL)",
        "z_m = the shared fusion and head on m alone; L = CE(z) + γ Σ_m CE(z_m); ω = "
        "softmax(T · ũ_m · mean_{j≠m} c̃_j) from normalised logit magnitudes c̃ and inverse "
        "entropies ũ; encoder m's gradients × (1 + ω_m) (training only).",
        "Modalities differ in how noisy their predictions are and the fit should depend more "
        "on the steadier one, with any fusion; M extra decision passes per batch; "
        "classification only.",
        {
            "gamma": "γ, weight of the unimodal losses after the warm-up",
            "temperature": "T, sharpness of the coefficient softmax",
            "warmup_epochs": "epochs with γ = 1 and no gradient scaling",
            "coefficients": '"variance" (ω as the paper describes) or "released" (ω = 0.5 for '
            "every modality, what the released code applies)",
        },
    ),
    ("weighting", "udml"): Note(
        '"Unbiased Dynamic Multimodal Learning" (UDML), code github.com/shicaiwei123/UDML',
        "u^m = E_m(σ_z^m) (Eqs. 9-11); d^m = ‖ℓ^f − ℓ^{−m}‖₁, α^m = M·d^m/Σ d (Eqs. 12-13); "
        "w_m ∝ 1/(u^m α^m) over present modalities, fused as |P|·w·z (Eqs. 3, 7); two stages.",
        "Test-time noise on some modalities, with a model that over-relies on one of them; "
        '`preset="official_code"` follows the authors\' code.',
        {
            "estimator_input": '"std" (E reads the pooled σ_z, paper) or "logvar" (log Σ)',
            "uncertainty_transform": '"identity" (u = E output, paper) or "exp_half" '
            "(σ̂ = exp(E/2), code)",
        },
    ),
    ("weighting", "mwam"): Note(
        'Lu et al., "Plug, Play, and Fortify: A Low-Cost Module for Robust Multimodal Image '
        'Understanding Models", ICLR 2026, arXiv:2602.22644 (MWAM)',
        "FRM_m = Σ|L/(H + ε)| of block-DCT coefficients; bank ← a·bank + (1−a)·FRM; "
        "w_m = α − β·σ(s·(FRM_m/mean bank − γ)); backbone gradients × w_m.",
        "Image modalities with unequal frequency content, trained with SGD (under Adam a "
        'constant gradient scale has no effect; use `apply="loss"`).',
        {
            "frm_source": '"input" (the batch, as the code) or "feature" (detached backbone '
            "output)",
            "frm_mode": '"official" Σ|L/(H+ε)| or "energy" ΣL²/(ΣH²+ε)',
            "patch_size": "DCT block length per axis",
            "band": "coefficients per band per axis",
            "eps": "ε of the ratios",
            "reduce": '"mean" over present samples or "sum" (the code)',
            "ema": "bank EMA factor a",
            "soft_begin": "first bank value (1−a)·FRM (the code's warm-up)",
            "alpha": "α of the weight function",
            "beta": "β of the weight function",
            "gamma": "γ, the centre of the weight function",
            "sharpness": "s, slope of the weight function",
            "apply": '"grad" (scale gradients), "loss" (weight unimodal losses) or "both"',
            "ordered_vectors": "vector features have an ordered axis (silences the warning)",
        },
    ),
    ("weighting", "btw"): Note(
        BTW_PAPER,
        "ŵ_im ∝ KL̃(p_m,i ‖ p_MM,i) · Ĩ_m (Eqs. 5-9), renormalised per sample; "
        "W ← α ŵ + (1 − α) W after each epoch (Eq. 10); h_m ← W[i, m]·h_m.",
        "Three or more modalities of unequal reliability, no extra trainable parameters; costs "
        'about (M + 1)× a plain fit with the default `unimodal="separate"`.',
        BTW_PARAMS,
    ),
    ("weighting", "btw_local"): Note(
        BTW_PAPER,
        "BTW with instance-level weights only: ŵ_im ∝ KL̃(p_m,i ‖ p_MM,i) (Eq. 8).",
        "As `btw`, and preferred when modalities are missing (the MI estimate is unreliable "
        "then, the paper's Table 7).",
        BTW_PARAMS,
    ),
    # -- data sets -------------------------------------------------------------------------------
    ("dataset", "mfeat"): Note(
        "UCI Machine Learning Repository, Multiple Features (Duin, 1998), doi:10.24432/C5HC70; "
        "CC BY 4.0. Card: `fusekit/datasets/data/mfeat.md`",
        "six vector views: fou 76, fac 216, kar 64, pix 240, zer 47, mor 6; 2,000 digits, "
        "10 classes (rows ordered by class: shuffle or stratify).",
        "Tabular multi-view classification, quick experiments and robustness sweeps "
        "(`examples/tabular_mfeat.py`).",
        {"views": "subset of the views, in that order", "as_frame": "return (DataFrame, Series)"},
    ),
    ("dataset", "basic_motions"): Note(
        "UEA multivariate time series archive (Bagnall et al., arXiv:1811.00075). "
        "Card: `fusekit/datasets/data/basic_motions.md`",
        "accelerometer (100, 3), gyroscope (100, 3); 4 activities; 40 train + 40 test.",
        "Sensor-fusion with sequence backbones (`examples/sensor_sequences.py`).",
        {"subset": '"train", "test" or "all"', "as_frame": "return (DataFrame, Series)"},
    ),
    ("dataset", "multiview_mnist"): Note(
        "MNIST (LeCun, Cortes, Burges), HOG views from scikit-multimodallearn. "
        "Card: `fusekit/datasets/data/multiview_mnist.md`",
        "four HOG views hog0..hog3 of 192; 5,000 digits, 10 classes.",
        "Mid-size four-view benchmarks and scaling in M.",
        {"as_frame": "return (DataFrame, Series)"},
    ),
    ("dataset", "nutrimouse"): Note(
        "Martin et al., Hepatology 45(3), 2007, via the R package CCA. "
        "Card: `fusekit/datasets/data/nutrimouse.md`",
        "gene 120, lipid 21; 40 mice; diet (5 classes) or genotype (2).",
        "The tiny-n, high-d case: regularisation and small backbones.",
        {"target": '"diet" or "genotype"', "as_frame": "return (DataFrame, Series)"},
    ),
    ("dataset", "clothing_reviews"): Note(
        "Women's E-Commerce Clothing Reviews (Kaggle, nicapotato, 2018), CC0. "
        "Card: `fusekit/datasets/data/clothing_reviews.md`",
        "text (845 reviews missing) + tabular columns; 23,486 rows; rating (1-5) or "
        "recommended (0/1). DataFrame only.",
        "Text + tabular with a naturally missing modality; featurise the text in a "
        "ColumnTransformer with `fusekit.datasets.AbsentWhereMissing`.",
        {"target": '"rating" or "recommended"', "as_frame": "only True exists"},
    ),
}


# -- rendering -----------------------------------------------------------------------------------
def _signature_of(entry: Any) -> inspect.Signature:
    target = entry.obj if entry.kind == "dataset" else entry.obj.__init__
    return inspect.signature(target)


def _parameters(entry: Any) -> list[inspect.Parameter]:
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        parameter
        for name, parameter in _signature_of(entry).parameters.items()
        if name != "self" and parameter.kind not in skipped
    ]


def _annotation(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return f": {text}"


def docstring_params(obj: Any) -> dict[str, str]:
    """Meanings from a Google-style ``Parameters:``/``Args:`` section (``a, b: text`` allowed)."""
    doc = inspect.getdoc(obj) or ""
    match = re.search(r"^(?:Parameters|Args):\n((?:[ \t]+.*\n?|\n)+)", doc, re.MULTILINE)
    if not match:
        return {}
    meanings: dict[str, str] = {}
    names: list[str] = []
    for line in match.group(1).splitlines():
        item = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
        if item:
            names = [name.strip() for name in item.group(1).split(",")]
            for name in names:
                meanings[name] = item.group(2).strip()
        elif line.strip() and names:
            for name in names:
                meanings[name] += " " + line.strip()
    return meanings


def _usage(entry: Any) -> str:
    if entry.kind == "dataset":
        return f'`fusekit.datasets.load("{entry.name}")`'
    return f'`FusionClassifier({entry.kind}="{entry.name}")`'


def _entry_markdown(entry: Any, note: Note | None) -> list[str]:
    where = f"{entry.obj.__module__}.{entry.obj.__qualname__}"
    lines = [f"### `{entry.name}` ({entry.kind})", "", entry.description, ""]
    lines.append(f"- **use**: {_usage(entry)}; from the distribution `{entry.distribution}` "
                 f"(`{where}`)")  # fmt: skip
    labels = ("source", "modalities") if entry.kind == "dataset" else ("paper", "equations")
    if note is None:
        lines.append(f"- **{labels[0]}**: see the docstring of `{entry.obj.__module__}`")
    else:
        lines.append(f"- **{labels[0]}**: {note.paper}")
        lines.append(f"- **{labels[1]}**: {note.equations}")
        lines.append(f"- **when to use**: {note.when}")
    parameters = _parameters(entry)
    prefix = "" if entry.kind == "dataset" else f" (`{entry.kind}__<name>=...`)"
    if not parameters:
        lines.append("- **parameters**: none")
    else:
        meanings = {**docstring_params(entry.obj), **(note.params if note else {})}
        lines.append(f"- **parameters**{prefix}:")
        for parameter in parameters:
            default = "" if parameter.default is inspect.Parameter.empty else parameter.default
            text = f"`{parameter.name}{_annotation(parameter)} = {default!r}`"
            meaning = meanings.get(parameter.name)
            lines.append(f"  - {text}" + (f": {meaning}" if meaning else ""))
    return [*lines, ""]


def _kinds(entries: list[Any]) -> list[str]:
    present = {entry.kind for entry in entries}
    return [k for k in KIND_ORDER if k in present] + sorted(present - set(KIND_ORDER))


def render(entries: list[Any] | None = None) -> tuple[str, list[str]]:
    """The reference as Markdown for ``entries`` (default: every registered plugin), and the
    plugins that have no hand-written notes."""
    from fusekit.engine.registry import get_registry

    entries = sorted(
        get_registry().entries() if entries is None else entries, key=lambda e: (e.kind, e.name)
    )
    missing = [f"{e.kind} {e.name}" for e in entries if (e.kind, e.name) not in NOTES]
    out = [
        "# Method reference",
        "",
        "<!-- Generated by docs/make_reference.py from the plugin registry; do not edit by hand:",
        "     rerun `.venv/bin/python docs/make_reference.py` after adding or changing one. -->",
        "",
        "Every method registered in this installation (built-in and first-party plugins), as "
        "`fusekit plugins` lists them. Use a name wherever a method is expected, and route its "
        'parameters by prefix: `FusionClassifier(fusion="lowrank", fusion__rank=8)`. Parameter '
        "lists are read from each class's `__init__`. Notation: M modalities, v_m = as_vector(h_m) "
        "the (pooled) features of modality m, mask `(B, M)` presence, z fused vector or logits, "
        "z_m modality m's own logits, ℓ the per-sample task loss. More detail: "
        "`docs/methods.md`, `docs/weightings.md`, `docs/balancing.md`, each plugin's README, "
        "and each module's docstring (equations with tensor shapes).",
        "",
    ]
    kinds = _kinds(entries)
    for kind in kinds:
        out += [f"## {KIND_TITLES.get(kind, kind)}", "", "| name | distribution | summary |"]
        out.append("|---|---|---|")
        for entry in (e for e in entries if e.kind == kind):
            summary = entry.description.replace("|", "\\|")
            out.append(f"| `{entry.name}` | `{entry.distribution}` | {summary} |")
        out.append("")
        for entry in (e for e in entries if e.kind == kind):
            out += _entry_markdown(entry, NOTES.get((entry.kind, entry.name)))
    return "\n".join(out).rstrip() + "\n", missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=REFERENCE)
    arguments = parser.parse_args(argv)
    text, missing = render()
    for name in missing:
        print(f"warning: no hand-written notes for {name}; add them to NOTES", file=sys.stderr)
    if arguments.check:
        current = arguments.output.read_text() if arguments.output.exists() else ""
        if current != text:
            print(f"{arguments.output} is stale: run docs/make_reference.py", file=sys.stderr)
            return 1
        return 0
    arguments.output.write_text(text)
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
