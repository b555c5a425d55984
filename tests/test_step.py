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
    return {"input": torch.randn(n, 6, generator=g), "label": label, "task": task}


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


def _step(micro_batches, accumulate):
    torch.manual_seed(0)
    net = TinyNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    stats = train_step(AllHeads(net), iter(micro_batches), accumulate, opt, scaler, torch.device("cpu"))
    return net, stats


def test_a_step_over_micro_batches_is_the_step_over_their_mean():
    full = _batch(8, 1)
    halves = [{k: v[:4] for k, v in full.items()}, {k: v[4:] for k, v in full.items()}]
    net1, s1 = _step([full], 1)
    net2, s2 = _step(halves, 2)
    # the gradient is the mean of the micro-batches' gradients: with one task per micro-batch mix this is
    # what the step promises (each micro-batch's loss / accumulate)
    torch.manual_seed(0)
    ref = TinyNet()
    losses = [multitask_loss(AllHeads(ref)(h["input"]), h["label"], h["task"])[0] for h in halves]
    (sum(losses) / 2).backward()
    with torch.no_grad():
        for p in ref.parameters():
            p -= 0.5 * p.grad
    for p, q in zip(net2.parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert s2.seen == s1.seen == 8
    assert float(s2.loss_sum) == pytest.approx(float(sum(loss.detach() * 4 for loss in losses)), rel=1e-6)
    # the weights moved, and only the optimizer's step moved them: gradients are cleared after it
    assert not torch.equal(net1.body.weight, TinyNet().body.weight)
    assert all(p.grad is None for p in net1.parameters())


def test_a_step_draws_exactly_its_micro_batches():
    batches = iter([_batch(4, s) for s in range(5)])
    net = TinyNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    train_step(AllHeads(net), batches, 3, opt, scaler, torch.device("cpu"))
    assert len(list(batches)) == 2  # three drawn, two left for the next step
