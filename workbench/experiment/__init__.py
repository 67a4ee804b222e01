"""Experiments: systems by name (:mod:`.systems`, the grammar in one place), produced or reused
through one path (:mod:`.produce`) into the run store (:mod:`.store`), evaluated, sliced and
ranked (:mod:`.runner`), behind the :class:`Workbench` facade."""
from .defaults import (DEFAULT_DATASETS, DEFAULT_SYSTEMS, EXTRA_SYSTEMS, FAST_PATHS, FOUNDATION_SYSTEMS, NEURAL_SYSTEMS,
                       fast_systems)
from .produce import DEFAULT_RERANK_DEPTH, Session, produce
from .runner import SystemResult, run_experiment, run_system
from .store import RunStore, StoredRun
from .fusion import FUSION_METHODS, FusedSystem, split_fusion
from .systems import FirstStageSystem, RerankedSystem, System, default_baseline, parse_system, split_reranker, split_systems
from .tuning import TunedFirstStageSystem, check_tuning_queries
from .workbench import Workbench

__all__ = ["DEFAULT_DATASETS", "DEFAULT_RERANK_DEPTH", "DEFAULT_SYSTEMS", "EXTRA_SYSTEMS", "FAST_PATHS", "FOUNDATION_SYSTEMS",
           "FUSION_METHODS", "fast_systems",
           "FirstStageSystem", "FusedSystem", "NEURAL_SYSTEMS", "RerankedSystem", "RunStore", "Session",
           "StoredRun", "System", "SystemResult", "TunedFirstStageSystem", "check_tuning_queries", "Workbench", "default_baseline", "parse_system", "produce",
           "run_experiment", "run_system", "split_fusion", "split_reranker", "split_systems"]
