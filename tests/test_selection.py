"""`mmpo select`: alignment potential and dual-margin scores against their reference code (copied into
``selection_upstream.py``), the implicit margins against a direct forward pass, and the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import selection_upstream as upstream
import torch
from helpers import write_jsonl

from mmpo.cli import main
from mmpo.margins.selection import alignment_potential, dual_margin, top_fraction


def test_alignment_potential_equals_its_reference_code():
    rng = np.random.default_rng(0)
    explicit, implicit = rng.gamma(2.0, 1.5, 200), rng.normal(0.0, 0.3, 200)
    for weight, metric in ((1.0, "rm-logp"), (2.5, "rm-xlogp")):
        kept, theirs = upstream.get_top_score_idx(
            {"rm_margin": explicit, "logp_margin_norm_abs": np.abs(implicit)}, metric, k=40, logp_weight=weight
        )
        ours = alignment_potential(explicit, implicit, weight)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
        assert set(top_fraction(ours, 0.2).tolist()) == set(kept.tolist())


def test_alignment_potential_hand_values():
    """Tiny vector: z-scores with the population standard deviation, and the pair the model already separates most
    (|implicit| 0.5) falls although its explicit margin is the largest."""
    explicit, implicit = np.array([2.0, 0.5, 3.0, 1.0, 0.1]), np.array([0.10, -0.20, 0.50, 0.05, 0.0])
    ours = alignment_potential(explicit, implicit)
    np.testing.assert_allclose(ours, [1.039325, -0.947213, -0.261522, 0.371267, -0.201857], atol=1e-6)
    assert top_fraction(ours, 0.4).tolist() == [0, 3]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("combine", ["add", "mul"])
def test_dual_margin_equals_its_reference_code(combine):
    """Long upper tails (more than 30 pairs above the first clip point) run the reference code's threshold loop."""
    rng = np.random.default_rng(1)
    implicit, external = rng.normal(4.0, 6.0, 400), rng.normal(2.0, 3.0, 400)
    theirs, _ = upstream.sampling_ensemble(implicit, external, combine, 40)
    # a pair with p1 = 0 and p2 = 1 is 0/0 there (NaN, which its argsort keeps first); mmpo scores it lowest
    undefined = np.isnan(theirs)
    assert (combine == "mul") == bool(undefined.any())
    theirs = np.where(undefined, -np.inf, theirs)
    ours = dual_margin(external, implicit, combine)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    # the same scores kept (MUL clips many pairs to 1.0: which of those tied pairs is kept is the sort's choice)
    kept, theirs_kept = top_fraction(ours, 0.1), np.argsort(theirs)[-40:]
    np.testing.assert_array_equal(np.sort(ours[kept]), np.sort(theirs[theirs_kept]))


def test_dual_margin_hand_values_and_the_undefined_pair():
    implicit, external = np.array([-5.0, 0, 3, 10, 40]), np.array([-1.0, 0.5, 2, 4, 8])
    np.testing.assert_allclose(dual_margin(external, implicit, "add"), [-6, 0.5, 5, 14, 48])
    mul = dual_margin(external, implicit, "mul")
    np.testing.assert_allclose(mul, [0, 0.0526316, 0.2816901, 0.8780488, 1.0], atol=1e-7)
    # p1 = 0 and p2 = 1: 0/0; never kept ahead of a defined pair (the reference code's argsort would keep it first)
    scores = dual_margin(np.array([0.0, 1.0, 5.0]), np.array([5.0, 1.0, -3.0]), "mul")
    assert scores[2] == -math.inf and 2 not in top_fraction(scores, 0.67).tolist()


def _pairs(count: int) -> list[dict]:
    rows = []
    for i in range(count):
        good = "yes" if i % 2 else "no"
        rows.append(
            {
                "prompt": f"Is {i} odd? Answer:",
                "chosen": f" {good}, it is {'odd' if i % 2 else 'even'}.",
                "rejected": " maybe." if i % 3 else " I could not say whether it is.",
                "score_chosen": float(5 + i % 5),
                "score_rejected": float(2 + i % 3),
                "id": f"row-{i}",
            }
        )
    return rows


def test_select_by_margin_writes_the_top_rows_unchanged(tmp_path, capsys):
    rows = _pairs(20)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "kept.jsonl"
    assert main(["select", "--by", "margin", "--keep", "0.25", "--data", data, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    margins = [r["score_chosen"] - r["score_rejected"] for r in rows]
    threshold = sorted(margins, reverse=True)[4]
    assert summary["kept"] == len(kept) == 5 and summary["pairs"] == 20
    assert all(r["score_chosen"] - r["score_rejected"] >= threshold for r in kept)
    assert kept == [r for r in rows if r["id"] in {k["id"] for k in kept}]  # unchanged, every column, file order


def _response_token_logps(model, tokenizer, prompt: str, response: str) -> torch.Tensor:
    """log p of each response token (and the EOS after it) given the prompt, from one plain forward pass."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
    token_logps = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return token_logps[len(prompt_ids) - 1 :]


def test_alignment_potential_reads_the_policys_mean_log_probs(tmp_path, tiny_llama_dir, capsys):
    """The implicit margin is the mean log-prob per response token of y_w minus y_l under --model: recomputed here
    with a plain forward pass, the selection must be the same."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = _pairs(12)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "kept.jsonl"
    argv = ["select", "--by", "alignment-potential", "--keep", "0.5", "--data", data, "--out", str(out)]
    assert main([*argv, "--model", str(tiny_llama_dir), "chat_template=never"]) == 0
    capsys.readouterr()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)

    def mean_logp(prompt: str, response: str) -> float:
        return _response_token_logps(model, tokenizer, prompt, response).mean().item()

    implicit = [mean_logp(r["prompt"], r["chosen"]) - mean_logp(r["prompt"], r["rejected"]) for r in rows]
    explicit = [r["score_chosen"] - r["score_rejected"] for r in rows]
    expected = {rows[i]["id"] for i in top_fraction(alignment_potential(np.array(explicit), np.array(implicit)), 0.5)}
    assert {json.loads(line)["id"] for line in out.read_text().splitlines()} == expected


def _summed_logp(model, tokenizer, prompt: str, response: str) -> float:
    return _response_token_logps(model, tokenizer, prompt, response).sum().item()


def test_dual_margin_reads_the_implicit_dpo_margin_against_the_reference(tmp_path, tiny_llama_dir, capsys):
    """m_im is the summed log-ratio margin of --model against --reference (beta 1): recomputed here with plain
    forward passes of two different models, ADD must keep the same rows; with the reference as the model, m_im is 0
    and ADD ranks by the data's margin alone."""
    from tiny_models import tiny_llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    reference_dir = tmp_path / "reference"
    tiny_llama(len(tokenizer), seed=11).save_pretrained(reference_dir)
    tokenizer.save_pretrained(reference_dir)
    rows = _pairs(16)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    common = ["--keep", "0.25", "--data", data, "chat_template=never"]
    model = ["--model", str(tiny_llama_dir), "--reference", str(reference_dir)]
    assert main(["select", "--by", "dual-margin", *model, *common, "--out", str(tmp_path / "dual.jsonl")]) == 0
    same = ["--model", str(tiny_llama_dir), "--reference", str(tiny_llama_dir)]
    assert main(["select", "--by", "dual-margin", *same, *common, "--out", str(tmp_path / "zero.jsonl")]) == 0
    assert main(["select", "--by", "margin", *common, "--out", str(tmp_path / "margin.jsonl")]) == 0
    capsys.readouterr()
    assert (tmp_path / "zero.jsonl").read_text() == (tmp_path / "margin.jsonl").read_text()

    policy, reference = (AutoModelForCausalLM.from_pretrained(d) for d in (tiny_llama_dir, reference_dir))
    implicit = [
        (
            _summed_logp(policy, tokenizer, r["prompt"], r["chosen"])
            - _summed_logp(policy, tokenizer, r["prompt"], r["rejected"])
        )
        - (
            _summed_logp(reference, tokenizer, r["prompt"], r["chosen"])
            - _summed_logp(reference, tokenizer, r["prompt"], r["rejected"])
        )
        for r in rows
    ]
    explicit = np.array([r["score_chosen"] - r["score_rejected"] for r in rows])
    expected = {rows[i]["id"] for i in top_fraction(dual_margin(explicit, np.array(implicit), "add"), 0.25)}
    assert {json.loads(line)["id"] for line in (tmp_path / "dual.jsonl").read_text().splitlines()} == expected
    assert (tmp_path / "dual.jsonl").read_text() != (tmp_path / "margin.jsonl").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--by", "dual-margin", "--keep", "0.1", "--model", "m"], "needs --reference"),
        (["--by", "alignment-potential", "--keep", "0.1"], "needs --model"),
        (["--by", "margin", "--keep", "0"], "--keep"),
        (["--by", "dcrm", "--keep", "0.1"], "--by"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2_before_loading(tmp_path, capsys, argv, message):
    data = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    try:
        code = main(["select", *argv, "--data", data, "--out", str(tmp_path / "o.jsonl")])
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    assert code == 2
    assert not (tmp_path / "o.jsonl").exists()
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
