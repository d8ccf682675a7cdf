"""The options of every command that explains pairs with a run (generate, explain, serve): decoding, unknown
and cold users and items, feature hints, device. Defined once here; each command lists them in its signature."""

from __future__ import annotations

from pepler_cli.cli.common import clean_up_option, flag, trust_remote_code_option

MAX_TOKENS = flag(
    "--max-tokens",
    help="Most tokens per explanation (default: the run's: the paper's 20 for PEPLER, 15 words for the "
    "baselines).",
)

DECODING = flag("--decoding", help="greedy (the paper's), beam, top-k or top-p sampling.", default="greedy")

BEAMS = flag("--beams", help="Beam width for --decoding beam.", default=4)

LENGTH_PENALTY = flag(
    "--length-penalty",
    help="--decoding beam ranks hypotheses by log-probability / length**this (0: plain sums).",
    default=0,
)

BEAM_GROUPS = flag(
    "--beam-groups",
    help="--decoding beam: diverse beam search, the beams split into this many groups decoded in turn "
    "(1: plain beam search).",
    default=1,
)

DIVERSITY_PENALTY = flag(
    "--diversity-penalty",
    help="With --beam-groups: lower a token's log-probability by this for each beam of an earlier group "
    "that chose it at the same step.",
    default=0.0,
)

NO_REPEAT_NGRAM = flag(
    "--no-repeat-ngram",
    help="Every decoding: never repeat an n-gram of this many tokens within an explanation (0: off).",
    default=0,
)

REPETITION_PENALTY = flag(
    "--repetition-penalty",
    help="Every decoding: divide a written token's positive score by this, multiply a negative one "
    "(CTRL's penalty; 1.0: off, 1.2 is usual).",
    default=1.0,
)

TOP_K = flag("--top-k", help="Sample among the k likeliest tokens (top-k).", default=50)

TOP_P = flag(
    "--top-p",
    help="Sample from the smallest set of tokens with this much probability (--decoding top-p).",
    default=0.9,
)

TEMPERATURE = flag("--temperature", help="Divide the logits by this to sample.", default=1.0)

SEED = flag("--seed", help="Sampling seed: same seed, same explanations.", default=1111)

BATCH_SIZE = flag("--batch-size", help="Examples decoded together.", default=256)

UNKNOWN = flag(
    "--unknown",
    help="Pairs whose user or item the run never saw in training: error (one line naming them) or skip "
    "(leave them out and say how many).",
    default="error",
)

COLD_START = flag(
    "--cold-start",
    help="What a cold user or item gets (one the run never trained, or, on a --cold-start split, one with at "
    "most K training records): error (as --unknown says), mean (of the trained vectors), neighbours (mean "
    "vector of the 10 trained ones closest in features), features (their words).",
    default="error",
)

HISTORY = flag(
    "--history",
    help="JSON lines of what is known of cold users and items, for --cold-start neighbours and features: "
    '{"user": ID} or {"item": ID} with "features": [...] and/or "text": "a review".',
)

FEATURE_HINT = flag(
    "--feature-hint",
    help="For a run trained with --feature-hint, the feature in each prompt: given (the test record's own: "
    "an upper bound that reads the test record), predicted (chosen from training data); default: the "
    "run's training mode.",
)

FEATURE_PREDICTOR = flag(
    "--feature-predictor",
    help="--feature-hint predicted: counts (the item's training features by frequency × the user's "
    "affinity) or learned (a scorer on the run's user and item vectors).",
    default="counts",
)

FEATURE = flag(
    "--feature", help='Explain every pair about this feature (e.g. "sound"): a run trained with hints.'
)

TRUST_REMOTE_CODE = trust_remote_code_option()

DEVICE = flag("--device", help="auto: cuda when available, else cpu.", default="auto")

CLEAN_UP_SPACES = clean_up_option()
