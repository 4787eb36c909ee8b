"""Default values of the training and study options, declared once, with why each is what it is.

The library (TrainConfig, the resolve step, the study) and the command line's help both import
them from here, so a default is never copied into the CLI as a literal. Pure constants: no imports,
so `llmhist --help` stays fast. The recipe-dependent defaults (warmup, schedule) are not here: a run
leaves them unset and the resolve step (llmhist.train.config.resolve) takes the family's recipe; the
peak learning rate, which no recipe can carry from a 100B-parameter run to a 1M-parameter one, is
the rule below, applied by the same step to the recipe's optimizer and the run's width.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------ one run (`llmhist train`)
ARCH = "llama"
# without --size or a shape: the smallest named size (its 20-tokens-per-parameter run takes about a
# minute on a laptop CPU; micro's about 20)
SIZE = "nano"
# without --tokens or --flops: D = 20 N, Chinchilla's compute-optimal ratio (Hoffmann et al. 2022, Table 3)
TOKENS_PER_PARAM = 20
DATA = "stdlib"  # the running Python's standard library: real text, no download
TOKENIZER = "bytes"
TOKEN_DTYPE = "uint16"  # nanoGPT's .bin files
CTX = 128  # assumed: long enough for the small sizes to use context, short enough for a CPU
BATCH = 16  # assumed: sequences per optimizer step at laptop scale
WSD_DECAY = 0.2  # Hägele et al. 2024 (Scaling Laws and Compute-Optimal Training Beyond Fixed Durations): 20%
SEED = 0
EVAL_BATCHES = 4  # the final evaluation scores EVAL_BATCHES x batch validation windows
DEVICE = "auto"
CKPT_SECONDS = 60.0  # a checkpoint a minute: a kill loses at most about a minute of work
OUT_ROOT = "runs"  # a run's folder without --out: runs/<arch>-<size>-s<seed>

# the peak learning rate without --lr: GPT-3 Table 2.1's 6e-4 for GPT-3 Small (d_model 768), scaled as
# 1/d_model (assumed: the muP rule for hidden weights) and capped (assumed: tiny widths would get 1e-2
# and more), so tiny models train in seconds; Adafactor (T5) takes T5's own rate whatever the width:
# T5 §3.1.2's inverse-sqrt schedule "sets a constant learning rate of 0.01 for the first 10^4 steps",
# a plateau longer than any run of ours
GPT3_PEAK_LR, GPT3_D_MODEL = 6e-4, 768
PEAK_LR_CAP = 3e-3
ADAFACTOR_LR = 1e-2
LR_RULE = f"{GPT3_PEAK_LR:g} x {GPT3_D_MODEL}/d_model, max {PEAK_LR_CAP:g}; {ADAFACTOR_LR:g} with Adafactor (T5)"

# ------------------------------------------------------------------------------ `llmhist bench`
BENCH_D_MODEL, BENCH_N_LAYERS, BENCH_N_HEADS = 128, 4, 4  # assumed: a shape whose step takes milliseconds
BENCH_STEPS = 10  # timed steps per repetition
BENCH_REPEATS = 3  # interleaved repetitions, the median reported

# ------------------------------------------------------------------------------ `llmhist study`
STUDY_BUDGETS = (1e11, 3e11, 1e12)  # FLOPs: three isoFLOP curves in minutes on a laptop CPU
STUDY_POINTS = 5  # model sizes per budget
STUDY_SPREAD = 16.0  # largest / smallest N per budget
STUDY_CTX = 64
STUDY_BATCH = 32
STUDY_BOOTSTRAP = 200  # resamples for the fits' intervals
STUDY_RECOMMEND_FACTOR = 10  # without --flops: recommend for 10x the largest budget (an extrapolation)
PLOTS = ("files", "terminal", "none")
