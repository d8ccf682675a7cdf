"""The PEPLER paper's baselines (Table 5) as pepler model plugins: ``nrt``, ``att2seq`` and ``peter``.

- NRT (Li et al., SIGIR 2017): a rating MLP and a GRU decoder whose first state reads the predicted rating.
- Att2Seq (Dong et al., EACL 2017): an MLP over the user and item starts a 2-layer LSTM decoder.
- PETER (Li, Zhang, Chen, ACL 2021): a small transformer trained from scratch that also predicts the rating
  and the explanation's words from the item; PETER+ is PETER given the record's feature
  (``--feature-hint given``).

Written from the authors' papers and their code (lileipisces/NRT, Att2Seq, PETER) read for facts; checked
against it in benchmarks/baselines_fidelity.py. Importing this package does not import torch.
"""

__version__ = "0.1.0"
