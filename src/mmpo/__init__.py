"""mmpo: Margin Matching Preference Optimization (Kim et al. 2024) for policies and reward models.

The losses (``mmpo.losses``) are pure torch; trainers, data and evaluation build on transformers,
datasets, peft and accelerate.
"""

__version__ = "0.1.0"
