"""The configuration object: defaults, environment, YAML, CLI, clear errors, topics."""

import dataclasses
from pathlib import Path

import pytest

from acdc.cli import _context, build_parser
from acdc.context import GROUP_CLASSES, GROUPS, ConfigError, Context
from acdc.graphs import coevolution, taskforce


def test_defaults_are_the_embedded_cpu_setup(monkeypatch: pytest.MonkeyPatch):
    for name in ("ACDC_LORA_RANK", "ACDC_VLLM_PORT", "ACDC_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    ctx = Context()
    assert ctx.base_model == "" and ctx.server_url == ""
    assert ctx.lora_rank == 16 and ctx.crossover == "linear" and ctx.mutation == "svd_noise"
    assert ctx.run_dir == Path("runs/default")


def test_environment_beats_default_and_explicit_beats_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("ACDC_LORA_RANK", "32")
    monkeypatch.setenv("ACDC_MUTATION_SIGMA", "0.5")
    monkeypatch.setenv("ACDC_SEED_ADAPTERS", "a, b")
    ctx = Context(mutation_sigma=0.1)
    assert ctx.lora_rank == 32
    assert ctx.mutation_sigma == 0.1
    assert ctx.seed_adapters == ["a", "b"]


def test_yaml_file_then_cli_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACDC_VLLM_PORT", "9100")
    config = tmp_path / "run.yaml"
    config.write_text("lora_rank: 8\nrun_id: from-file\nvllm_port: 9200\n")
    args = build_parser().parse_args(
        ["seed", "--config", str(config), "--run-id", "from-cli", "--max-loras", "4"]
    )
    ctx = _context(args)
    assert (ctx.lora_rank, ctx.run_id, ctx.max_loras, ctx.vllm_port) == (8, "from-cli", 4, 9200)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"lora_rank": 12}, "lora_rank"),
        ({"max_loras": 0}, "max_loras"),
        ({"vllm_port": 70000}, "vllm_port"),
        ({"vllm_device": "tpu"}, "vllm_device"),
        ({"mutation_svd": "fast"}, "mutation_svd"),
        ({"max_loras": 8, "max_loaded_adapters": 4}, "max_loaded_adapters"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values: dict[str, object], field: str):
    with pytest.raises(ConfigError, match=field):
        Context(**values)  # type: ignore[arg-type]


def test_unknown_settings_and_unparsable_environment_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "bad.yaml"
    config.write_text("lora_rnak: 8\n")
    with pytest.raises(ConfigError, match="unknown setting.*lora_rnak"):
        Context.load(config)
    with pytest.raises(ConfigError, match="does not exist"):
        Context.load(tmp_path / "missing.yaml")
    monkeypatch.setenv("ACDC_MAX_LORAS", "many")
    with pytest.raises(ConfigError, match="max_loras"):
        Context()


def test_the_old_novel_unrelated_share_is_read_as_its_complement_or_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    assert Context().novel_related_share == 0.8  # the reference's share of related requests
    old = tmp_path / "old.yaml"
    old.write_text("novel_unrelated_share: 0.8\n")
    assert Context.load(old).novel_related_share == pytest.approx(0.2)
    assert "write that instead" in caplog.text
    both = tmp_path / "both.yaml"
    both.write_text("novel_unrelated_share: 0.8\nnovel_related_share: 0.5\n")
    with pytest.raises(ConfigError, match="give novel_related_share alone"):
        Context.load(both)


def test_the_adaptation_budget_holds_the_drawn_parents():
    with pytest.raises(ConfigError, match="adapt_budget"):
        Context(adapt_parents=10, adapt_budget=5)


def test_every_setting_belongs_to_exactly_one_topic():
    listed = [name for names in GROUPS.values() for name in names]
    assert len(listed) == len(set(listed)), "a setting is in two topics"
    assert sorted(listed) == sorted(f.name for f in dataclasses.fields(Context))


BAD_VALUE = {
    "run": ("pass_threshold", 1.5),
    "serving": ("max_loras", 0),
    "breeding": ("lora_rank", 12),
    "tasks": ("adapt_budget", 1),
    "judge": ("judge_min_agreement", -0.1),
    "curator": ("novelty_neighbours", 0),
    "taskforce": ("taskforce_size", 0),
    "storage": ("chroma_port", 0),
    "budget": ("cost_budget_usd", -1.0),
}


@pytest.mark.parametrize("topic", GROUPS)
def test_each_topic_checks_its_own_fields(topic: str):
    name, bad = BAD_VALUE[topic]
    assert name in GROUPS[topic]
    group = GROUP_CLASSES[topic]
    group().check()  # its defaults pass its own check
    with pytest.raises(ConfigError, match=name) as err:
        group(**{name: bad}).check()
    assert err.value.field == name
    with pytest.raises(ConfigError, match=name):
        Context(**{name: bad})


def test_studio_shows_the_settings_by_topic():
    for graph in (coevolution.graph, taskforce.graph):
        schema = graph.get_context_jsonschema()
        assert schema is not None
        properties = schema["properties"]
        assert list(properties) == [name for names in GROUPS.values() for name in names]
        for topic, names in GROUPS.items():
            for name in names:
                assert properties[name]["title"].startswith(f"{topic}: "), name
                assert properties[name]["description"].startswith(f"[{topic}] "), name
