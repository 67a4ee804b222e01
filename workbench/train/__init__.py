"""Fine-tuning rankers on lists: losses (pointwise, pairwise, listwise, LambdaLoss, the hybrid),
cross-year folds with a leakage guard, a resumable trainer with logs, and training curves; and
contrastive (InfoNCE) fine-tuning of a bi-encoder on the same folds."""
from .biencoder import BiEncoderTrainer
from .config import TrainConfig
from .data import FOLDS, Fold, RankingList, fold_lists
from .losses import LOSSES
from .plot import plot_training
from .run import train_config
from .trainer import Trainer

__all__ = ["BiEncoderTrainer", "FOLDS", "Fold", "LOSSES", "RankingList", "TrainConfig", "Trainer", "fold_lists",
           "plot_training", "train_config"]
