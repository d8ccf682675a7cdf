"""Settings fixed by the PEPLER paper (Li, Zhang, Chen; ACM TOIS 2023), defined once for every module.

Options default to these values; each is written nowhere else.
"""

from __future__ import annotations

# Explanations are cut to this many BPE tokens when a dataset is prepared, and decoding writes at most this many.
MAX_EXPLANATION_TOKENS = 20
# PEPLER-D's discrete prompt (equation 4) is cut to this many BPE tokens.
MAX_DISCRETE_PROMPT_TOKENS = 20
# The model plugin the paper's method is (plugins.ModelPlugin): `pepler train` trains it by default, and a run from
# before model plugins is one of its runs.
DEFAULT_MODEL = "pepler"
# The tokenizer that counts explanation tokens: the paper's is GPT-2's BPE (a backbone plugin's name).
TRUNCATION_TOKENIZER = "gpt2"
