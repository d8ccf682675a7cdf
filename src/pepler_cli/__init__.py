"""pepler: personalized prompt learning for explainable recommendation (Li, Zhang, Chen; ACM TOIS 2023)."""

__version__ = "0.1.0"
