"""The Recipe object and the loading functions other modules call."""
from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from qlora_studio.recipe import (
    RecipeError,
    RecipeIssue,
    as_dict,
    load_recipe,
    recipe_from_dict,
    recipe_from_text,
    recipe_json_schema,
    validate_recipe_text,
)

HEAD = "base_model: org/model\ndata:\n  train: train.jsonl\n"


def _only(text: str) -> RecipeIssue:
    issues = validate_recipe_text(text)
    assert len(issues) == 1, [i.format() for i in issues]
    return issues[0]


def test_attribute_access_defaults_and_optional_fields(tmp_path: Path) -> None:
    path = tmp_path / "r.qlora.yaml"
    path.write_text(HEAD + "training:\n  lr: 1e-4\n  early_stopping: {patience: 2}\n", "utf-8")
    (tmp_path / "train.jsonl").touch()
    r = load_recipe(path)
    assert r.training.lr == 1e-4  # YAML 1.2: a number, not the string "1e-4"
    assert r.training.early_stopping.patience == 2
    assert r.training.early_stopping.min_delta == 0  # nested default
    assert r.training.grad_accum == 8 and r.lora.r == 16 and r.quantization.quant_type == "nf4"
    assert r.training.max_steps is None and r.data.eval is None and r.revision is None
    assert r.trust_remote_code is False
    assert r.recipe_path == path.resolve() and r.recipe_dir == tmp_path.resolve()
    assert r.data.fields.messages == "messages"
    with pytest.raises(AttributeError, match="learning_rate"):
        _ = r.training.learning_rate  # a typed section: unknown fields do not exist


def test_recipe_is_read_only_and_to_dict_is_a_copy() -> None:
    r = recipe_from_text(HEAD + "lora:\n  target_modules: [q_proj, v_proj]\n", "/tmp")
    assert r.lora.target_modules == ("q_proj", "v_proj")
    with pytest.raises(AttributeError):
        r.training.lr = 1.0  # type: ignore[misc]
    d = r.to_dict()
    d["lora"]["target_modules"].append("k_proj")
    assert r.lora.target_modules == ("q_proj", "v_proj")
    assert recipe_from_dict(r.to_dict(), "/tmp") == r


def test_recipe_survives_copy_and_pickle(tmp_path: Path) -> None:
    path = tmp_path / "r.qlora.yaml"
    path.write_text(HEAD + "training:\n  epochs: 2\n  max_steps: 5\n", "utf-8")
    (tmp_path / "train.jsonl").touch()
    r = load_recipe(path)
    for clone in (copy.deepcopy(r), pickle.loads(pickle.dumps(r))):
        assert clone == r and clone.recipe_path == r.recipe_path and clone.warnings == r.warnings
        assert clone.training.max_steps == 5
    assert pickle.loads(pickle.dumps(r.training)) == r.training


def test_resolve_path_and_local_model_detection(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    r = recipe_from_text(HEAD.replace("org/model", "weights"), tmp_path)
    assert r.resolve_path("data/x.jsonl") == (tmp_path / "data/x.jsonl").resolve()
    assert r.resolve_path("/abs/x") == Path("/abs/x")
    assert r.is_local_model()  # an existing folder next to the recipe
    assert r.model_location() == str((tmp_path / "weights").resolve())
    assert r.is_local_model("./not-yet-there")  # explicit paths are paths even when missing
    assert r.is_local_model("../m") and r.is_local_model("/m")
    assert not r.is_local_model("meta-llama/Llama-3.1-8B")
    assert r.model_location("meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"
    assert r.tokenizer_location() == r.model_location()


def test_every_error_is_reported_with_lines() -> None:
    text = "data:\n  train: ''\nlora:\n  r: 0\n  dropout: 2\ntraining:\n  seed: -3\n"
    got = [(i.path, i.line) for i in validate_recipe_text(text)]
    assert got == [("base_model", 1), ("data.train", 2), ("lora.r", 4), ("lora.dropout", 5), ("training.seed", 7)]


def test_messages_are_readable() -> None:
    lr = _only(HEAD + "training:\n  lr: -1\n")
    assert (lr.path, lr.line, lr.column, lr.message) == ("training.lr", 5, 7, "must be > 0 (got -1)")
    assert lr.format("r.qlora.yaml") == "r.qlora.yaml:5:7: training.lr: must be > 0 (got -1)"
    typo = _only(HEAD + "lora:\n  r: 8\n  aplha: 16\n")
    assert (typo.path, typo.line) == ("lora.aplha", 6)
    assert 'did you mean "alpha"?' in typo.message
    assert 'did you mean "grad_accum"' in _only(HEAD + "training:\n  gradient_accumulation_steps: 4\n").message
    assert "allowed keys here: dir, run_name" in _only(HEAD + "output:\n  zzz: 1\n").message
    enum = _only(HEAD + "training:\n  optimizer: sgd\n").message
    assert "must be one of: paged_adamw_8bit, adamw_8bit, paged_adamw_32bit, adamw" in enum
    missing = _only("base_model: m\nlora:\n  r: 8\ndata:\n  format: chat\n")
    assert (missing.path, missing.line) == ("data.train", 4)
    assert missing.message.startswith('missing required key "train"')


def test_warnings_do_not_stop_loading() -> None:
    r = recipe_from_text(HEAD + "training:\n  epochs: 3\n  max_steps: 10\n", "/tmp")
    assert r.training.max_steps == 10
    assert [(w.severity, w.path, w.line) for w in r.warnings] == [("warning", "training.epochs", 5)]


def test_yaml_problems() -> None:
    dup = _only(HEAD + "training:\n  lr: 0.1\n  lr: 0.2\n")
    assert (dup.path, dup.line) == ("training.lr", 6) and "line 5" in dup.message
    syntax = _only(HEAD + "lora: {r: 8\ntraining:\n  lr: -1\n")
    assert syntax.path == "" and syntax.message.startswith("YAML syntax error")
    recursive = validate_recipe_text(HEAD + "lora: &a\n  target_modules: [*a]\n")
    assert any("refers to itself" in i.message for i in recursive)
    assert "empty" in _only("# nothing\n").message
    assert "mapping" in _only("just text\n").message


def test_load_recipe_file_errors_are_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.qlora.yaml")
    with pytest.raises(RecipeError, match="folder"):
        load_recipe(tmp_path)
    bad = tmp_path / "latin1.qlora.yaml"
    bad.write_bytes("base_model: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="UTF-8"):
        load_recipe(bad)


def test_recipe_from_dict_validates_without_positions() -> None:
    with pytest.raises(RecipeError) as caught:
        recipe_from_dict({"base_model": "m", "data": {"train": "t"}, "lora": {"r": -2}}, "/tmp")
    assert [(i.path, i.line) for i in caught.value.issues] == [("lora.r", 0)]
    original = {"base_model": "m", "data": {"train": "t"}}
    r = recipe_from_dict(original, "/tmp")
    assert original == {"base_model": "m", "data": {"train": "t"}}  # not modified
    assert r.data.max_seq_len == 2048


def test_defaults_come_from_the_shipped_schema() -> None:
    schema = recipe_json_schema()
    r = recipe_from_text(HEAD, "/tmp")
    for section in ("quantization", "lora", "training", "output", "generation"):
        assert as_dict(getattr(r, section)) == schema["properties"][section]["default"]
    json.dumps(r.to_dict())  # JSON-ready


def test_quick_fix_suggestions_and_str() -> None:
    typo = _only(HEAD + "training:\n  lr_scheduler_type: cosine\n")
    assert typo.suggestion == "scheduler"
    assert typo.to_dict()["suggestion"] == "scheduler"
    enum = _only(HEAD + "lora:\n  bias: lora-only\n")
    assert enum.path == "lora.bias" and enum.suggestion == "lora_only"
    bound = _only(HEAD + "lora:\n  r: 0\n")
    assert bound.suggestion is None and "suggestion" not in bound.to_dict()
    assert str(bound) == "5:6: lora.r: must be >= 1 (got 0)"
