"""Training at GPU scale, checked on the CPU: two processes (gloo, as ``torchrun --nproc_per_node 2``
would start them) give the loss curve and weights of one process at the same global batch;
gradient accumulation (with gradient checkpointing) gives those of one step over the whole batch;
the published recipes (configs/rankt5-enc-base.toml, ...) parse; the new fields stay out of old keys.

Dropout is 0 in the configuration and in the tiny BERT (``hidden_dropout_prob``,
``attention_probs_dropout_prob``): the processes draw different dropout masks than one process.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers_models import offline, write_tiny_bert  # noqa: E402,F401 - offline: autouse fixture
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.data import Fold, RankingList  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

WORDS = "capital france paris city eggs boil minutes water river town cook hot cold".split()
CONFIGS = Path(__file__).parent.parent / "configs"
RECIPES = ("rankt5-enc-base.toml", "monot5-base.toml", "t5gemma-hybrid.toml")


def synthetic_fold(n_train: int = 7, n_validation: int = 2, size: int = 6) -> Fold:
    rng = np.random.default_rng(0)
    lists = []
    for q in range(n_train + n_validation):
        topic = rng.choice(WORDS, 2)
        passages = [" ".join(rng.choice(WORDS, 3 + q % 4)) for _ in range(size)]
        labels = np.array([float(len(set(topic) & set(p.split()))) for p in passages], dtype=np.float32)
        labels[0] = max(labels[0], 1.0)
        lists.append(RankingList("synthetic", f"q{q}", " ".join(topic), [f"d{q}-{i}" for i in range(size)], passages,
                                 labels))
    return Fold("synthetic", "none", lists[:n_train], lists[n_train:], ("synthetic",))


def config(backbone, **overrides) -> TrainConfig:
    # 7 lists, 3 per step: steps of 3, 3 and 1 lists, so shares and micro-batches are uneven or empty
    values = dict(name="d", backbone=str(backbone), loss="pointwise", dropout=0.0, epochs=2, lists_per_batch=3,
                  list_size=4, max_length=32, precision="fp32", checkpoint_every=100, seed=5, pairs_per_forward=5,
                  threads=1, lr_encoder=1e-3, lr_head=1e-2)
    return TrainConfig(**{**values, **overrides})


def _rank(rank: int, world: int, port: int, backbone: str, out: str) -> None:
    """One process of ``torchrun --nproc_per_node <world>``: its environment, then the trainer."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    import torch.distributed as dist

    trainer = Trainer(config(backbone), synthetic_fold(), out, progress=False)
    trainer.train()
    torch.save(trainer.model.state_dict(), Path(out) / f"weights-{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_bert(tmp_path / "tiny-bert", WORDS, head="base", hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0)


def _curve(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "steps.csv")


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_two_processes_equal_one_at_the_same_global_batch(tiny, tmp_path):
    single = Trainer(config(tiny), synthetic_fold(), tmp_path / "one", progress=False)
    single.train()
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(tiny), str(tmp_path / "two")), nprocs=2, join=True)
    one, two = _curve(tmp_path / "one"), _curve(tmp_path / "two")
    assert len(one) == 6 and list(one.columns) == list(two.columns)  # 2 epochs x (3 + 3 + 1 lists)
    np.testing.assert_allclose(two["loss"], one["loss"], atol=1e-5)
    np.testing.assert_allclose(two["grad_norm"], one["grad_norm"], rtol=1e-4)
    assert one["loss"].iloc[-1] < one["loss"].iloc[0]  # it learns (else equal curves would prove little)
    weights = [torch.load(tmp_path / "two" / f"weights-{r}.pt") for r in (0, 1)]
    _assert_same_weights(weights[0], single.model.state_dict())
    _assert_same_weights(weights[1], weights[0])
    # rank 0 alone wrote the logs and the model
    assert (tmp_path / "two" / "model").is_dir()
    assert len((tmp_path / "two" / "epochs.jsonl").read_text().splitlines()) == 2


def test_gradient_accumulation_equals_one_step_over_the_batch(tiny, tmp_path):
    whole = Trainer(config(tiny), synthetic_fold(), tmp_path / "whole", progress=False)
    whole.train()
    split = Trainer(config(tiny, gradient_accumulation=2, gradient_checkpointing=True), synthetic_fold(),
                    tmp_path / "split", progress=False)
    assert split.model.body.is_activation_checkpointing
    split.train()
    a, b = _curve(tmp_path / "whole"), _curve(tmp_path / "split")
    np.testing.assert_allclose(b["loss"], a["loss"], atol=1e-5)
    _assert_same_weights(split.model.state_dict(), whole.model.state_dict())
    assert split.state["pairs_seen"] == whole.state["pairs_seen"] == 2 * 7 * 4


def test_new_fields_stay_out_of_existing_keys():
    plain = TrainConfig()
    assert "gradient_accumulation" not in plain.key() and "gradient_checkpointing" not in plain.key()
    assert '"gradient_accumulation": 4' in TrainConfig(gradient_accumulation=4).key()
    with pytest.raises(Exception, match="gradient_accumulation must be at least 1"):
        TrainConfig(gradient_accumulation=0)


@pytest.mark.parametrize("name", RECIPES)
def test_published_recipes_parse(name):
    recipe = TrainConfig.from_file(CONFIGS / name)
    assert recipe.name == name.removesuffix(".toml") and recipe.precision in ("auto", "bf16")
    text = (CONFIGS / name).read_text(encoding="utf-8")
    assert "Source:" in text  # each recipe names the paper / repository its values come from
