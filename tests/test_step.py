import pytest
import torch
import torch.nn.functional as F
from torch import nn

from twostream.models.heads import TaskHeads, TaskModel
from twostream.step import AllHeads, multitask_loss, train_step


class TinyNet(TaskModel):
    """A two-task model small enough to check a step by hand: features = a linear map of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 5)
        self.pre_logits = nn.Identity()
        self.head = TaskHeads(5, {"a": 3, "b": 2})

    def forward_features(self, x):
        return torch.tanh(self.body(x))


def _batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    task = torch.randint(0, 2, (n,), generator=g)
    label = torch.where(task == 0, torch.randint(0, 3, (n,), generator=g), torch.randint(0, 2, (n,), generator=g))
    x = torch.randn(n, 6, generator=g)  # as planes: float codes, scale 1, offset 0
    return {"input": x, "scale": torch.ones(n, 6), "offset": torch.zeros(n, 6), "label": label, "task": task}


def test_multitask_loss_is_the_sum_of_each_tasks_mean():
    b = _batch(8, 0)
    net = TinyNet()
    logits = AllHeads(net)(b["input"])
    assert set(logits) == {"a", "b"} and logits["a"].shape == (8, 3) and logits["b"].shape == (8, 2)
    loss, correct = multitask_loss(logits, b["label"], b["task"])
    rows_a, rows_b = b["task"] == 0, b["task"] == 1
    expected = F.cross_entropy(logits["a"][rows_a], b["label"][rows_a]) + \
        F.cross_entropy(logits["b"][rows_b], b["label"][rows_b])
    assert torch.allclose(loss, expected)
    right = (logits["a"][rows_a].argmax(1) == b["label"][rows_a]).sum() + \
        (logits["b"][rows_b].argmax(1) == b["label"][rows_b]).sum()
    assert int(correct) == int(right)
    # a task absent from the batch adds nothing, and its head still gets a (zero) gradient (DDP)
    only_a = {k: v[rows_a] for k, v in b.items()}
    loss_a, _ = multitask_loss(AllHeads(net)(only_a["input"]), only_a["label"], only_a["task"])
    loss_a.backward()
    assert torch.equal(net.head.heads["b"].weight.grad, torch.zeros(2, 5))


TASKS = torch.tensor([0, 0, 0, 1, 0, 1, 1, 1])  # micro-batches of 4 hold 3:1 and 1:3 rows of the two tasks


def _unbalanced_batch(seed=1):
    b = _batch(8, seed)
    b["task"] = TASKS.clone()
    b["label"] = torch.where(TASKS == 0, b["label"] % 3, b["label"] % 2)
    return b


def _step_grads(batch, micro, world_size=1):
    """The gradient a step applies (SGD with lr 1, no momentum: the weight change), and its stats."""
    torch.manual_seed(0)
    net = TinyNet()
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    chunks = [{k: v[i:i + micro] for k, v in batch.items()} for i in range(0, 8, micro)]
    counts = torch.bincount(batch["task"], minlength=2)
    stats = train_step(AllHeads(net), iter(chunks), len(chunks), counts, opt, scaler, torch.device("cpu"),
                       world_size=world_size)
    return [b - p.detach() for b, p in zip(before, net.parameters())], stats


def test_the_step_is_the_paper_loss_of_the_whole_batch_for_any_micro_batch():
    batch = _unbalanced_batch()
    torch.manual_seed(0)
    ref = TinyNet()
    loss, _ = multitask_loss(AllHeads(ref)(batch["input"]), batch["label"], batch["task"])
    loss.backward()  # the paper's loss of the whole batch: each task's mean over its rows, summed
    for micro in (8, 4, 1):
        grads, stats = _step_grads(batch, micro)
        for g, p in zip(grads, ref.parameters()):
            assert torch.allclose(g, p.grad, atol=1e-6), micro
        assert float(stats.loss) == pytest.approx(float(loss.detach()), abs=1e-6) and stats.seen == 8
    # per-micro-batch task means would give another loss: the split matters unless the counts are global
    halves = [multitask_loss(AllHeads(ref)(batch["input"][i:i + 4]), batch["label"][i:i + 4],
                             batch["task"][i:i + 4])[0] for i in (0, 4)]
    assert abs(float(sum(halves).detach() / 2) - float(loss.detach())) > 1e-3


def test_a_step_draws_exactly_its_micro_batches():
    batches = iter([_batch(4, s) for s in range(5)])
    net = TinyNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    train_step(AllHeads(net), batches, 3, torch.tensor([6, 6]), opt, scaler, torch.device("cpu"))
    assert len(list(batches)) == 2  # three drawn, two left for the next step
    assert all(p.grad is None for p in net.parameters())  # cleared after the optimizer's step
