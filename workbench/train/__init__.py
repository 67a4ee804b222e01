"""Fine-tuning rankers on lists: losses (pointwise, pairwise, listwise, LambdaLoss, the hybrid),
cross-year folds with a leakage guard, one resumable trainer with logs for every architecture
(encoder, encoder-decoder, bi-encoder; InfoNCE with in-batch negatives for the bi-encoder), and
training curves."""
from .config import TrainConfig
from .data import FOLDS, Fold, RankingList, fold_lists
from .losses import LOSSES
from .plot import plot_training
from .run import train_config
from .trainer import Trainer

__all__ = ["FOLDS", "Fold", "LOSSES", "RankingList", "TrainConfig", "Trainer", "fold_lists",
           "plot_training", "train_config"]
