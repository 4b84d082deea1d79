"""The flow's settings: one file of defaults, configs that extend it, checks that name the key, overrides."""
import json
import re

import pytest

from emoji_reco.errors import ConfigError
from emoji_reco.settings import CONFIG_DIR, FREE_FORM, defaults, parse, with_overrides
from helpers.flows import FLOW, ROOT


def leaves(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" not in FREE_FORM:
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", ["local.json", "aws.json", "sagemaker.json", "gpu.json", "multinode.json",
                                  "shared-tweets.json"])
def test_every_config_holds_only_what_differs_and_parses_to_every_setting(name):
    text = (CONFIG_DIR / name).read_text()
    own = json.loads(text)
    assert "extends" in own and len(text.splitlines()) <= 40
    parsed = parse(text)
    assert set(leaves(parsed)) == set(leaves(defaults()))
    parent = parse(json.dumps({"extends": own["extends"]}))
    for key, value in leaves({k: v for k, v in own.items() if k != "extends"}).items():
        assert leaves(parent).get(key) != value, f"{name} repeats {key} from {own['extends']}"


def test_the_configs_keep_their_meaning():
    aws, sagemaker = parse('{"extends": "aws.json"}'), parse('{"extends": "sagemaker.json"}')
    assert aws["deploy"]["target"] == "sagemaker" and aws["train"]["backend"] == "local"
    assert (sagemaker["train"]["backend"] == "sagemaker" and sagemaker["platform"]["batch_steps"]
            == ["convert", "evaluate"])
    assert (sagemaker["platform"]["timeout_minutes"] == aws["platform"]["timeout_minutes"]
            and aws["platform"]["retries"] == 2)
    assert parse((CONFIG_DIR / "local.json").read_text()) == defaults()


def test_a_users_config_of_three_keys_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "team.json").write_text('{"extends": "aws.json", "deploy": {"endpoint": "team"}}')
    config = parse('{"extends": "team.json", "train": {"epochs": 3, "learning_rate": 1e-4}, '
                   '"data": {"sample": 500}}')
    assert config["train"]["epochs"] == 3 and config["train"]["batch_size"] == 32  # the rest: from base.json
    assert config["deploy"] == {"target": "sagemaker", "endpoint": "team", "keep_versions": 5,
                                "flow": "EmojiFlow"}
    assert config["platform"]["schedule"] == {"weekly": True}
    replaced = parse('{"extends": "aws.json", "platform": {"schedule": {"cron": "0 3 * * ? *"}}}')
    # free-form values are replaced, not merged
    assert replaced["platform"]["schedule"] == {"cron": "0 3 * * ? *"}


@pytest.mark.parametrize("text, message", [
    ('{"train": {"epocs": 1}}', "train.epocs: unknown key; did you mean train.epochs?"),
    ('{"trian": {"epochs": 1}}', "trian: unknown key; did you mean train?"),
    ('{"train": {"epochs": "2"}}', 'train.epochs: expected a whole number, got "2"'),
    ('{"train": {"learning_rate": "fast"}}', "train.learning_rate: expected a number"),
    ('{"data": {"labels": 3}}', "data.labels: expected a string or null, got 3"),
    ('{"sagemaker": {"training": {"spot": "yes"}}}', "sagemaker.training.spot: expected true or false"),
    ('{"model": "bundled"}', "model: expected an object"),
    ('{"model": {"ngram": {"weight": 1.5}}}', "model.ngram.weight: expected a number "
                                              "from 0.0 to 1.0, got 1.5"),
    ('{"model": {"ngram": {"weight": true}}}', "model.ngram.weight: expected a number or null, got true"),
    ('{"data": {"validation_fraction": 1}}', "data.validation_fraction: expected a number from 0.0 to 0.9"),
    ('{"extends": "nowhere.json"}', "extends: nowhere.json not found"),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "is not valid JSON"),
])
def test_a_config_mistake_is_refused_with_its_path(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(text)


def test_a_whole_number_is_a_number_where_a_nullable_number_is_expected():
    assert parse('{"model": {"ngram": {"weight": 0}}}')["model"]["ngram"]["weight"] == 0


def test_a_config_that_extends_itself_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text('{"extends": "b.json"}')
    (tmp_path / "b.json").write_text('{"extends": "a.json"}')
    with pytest.raises(ConfigError, match="extends itself"):
        parse('{"extends": "a.json"}')


def test_dotted_overrides_apply_at_any_depth_and_are_checked():
    config = with_overrides(defaults(), {"train.epochs": 1, "sagemaker.endpoint.blue_green.bake_seconds": 60,
                                         "data.path": "", "model.base": None})
    assert (config["train"]["epochs"] == 1 and config["sagemaker"]["endpoint"]["blue_green"]["bake_seconds"]
            == 60)
    assert config["model"]["base"] == "bundled"  # None and "" leave the config's value
    with pytest.raises(ConfigError, match="train.epochz: unknown key"):
        with_overrides(defaults(), {"train.epochz": 1})


def test_the_readme_documents_every_key_with_its_default():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| key | default | meaning |"):readme.index("## Base model")]
    documented = {}
    for row in table.splitlines()[2:]:
        if not row.startswith("| `"):
            continue
        keys_cell, default_cell = row.split(" | ")[:2]
        keys = re.findall(r"`([a-z0-9_.*]+)`", keys_cell)
        values = re.findall(r"`([^`]*)`", default_cell)
        for i, key in enumerate(keys):
            documented[key] = values[i] if len(values) == len(keys) else None
    flat = leaves(defaults())
    for key, value in flat.items():
        group = next((k for k in documented if k.endswith(".*") and key.startswith(k[:-1])), None)
        assert key in documented or group, f"README's configuration table lacks {key}"
        if documented.get(key) is not None:
            shown = value if isinstance(value, str) else json.dumps(value)
            assert documented[key] in (shown, json.dumps(value)), (key, documented[key], value)
    assert not [k for k in documented if not k.endswith(".*")
                and k not in flat], "README documents unknown keys"


def test_the_flow_refuses_a_config_mistake_in_one_message(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text('{"extends": "local.json", "train": {"epocs": 1}}')
    done = subprocess.run([sys.executable, FLOW, "--config", "config", str(bad), "show"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert (done.returncode != 0 and "train.epocs: unknown key; did you mean train.epochs?" in done.stderr
            + done.stdout)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("text, message", [
    ('{"train": {"epocs": 1}}', "train.epocs: unknown key; did you mean train.epochs?"),
    ('{"zzzz": 1}', "zzzz: unknown key; known keys: " + ", ".join(defaults())),
    ('{"train": {"epochs": "2"}}', 'train.epochs: expected a whole number, got "2"'),
    ('{"train": {"epochs": 2.5}}', "train.epochs: expected a whole number, got 2.5"),
    ('{"train": {"epochs": true}}', "train.epochs: expected a whole number, got true"),
    ('{"train": {"learning_rate": "fast"}}', 'train.learning_rate: expected a number, got "fast"'),
    ('{"train": {"learning_rate": false}}', "train.learning_rate: expected a number, got false"),
    ('{"sagemaker": {"training": {"spot": 1}}}', "sagemaker.training.spot: expected true or false, got 1"),
    ('{"data": {"path": 3}}', "data.path: expected a string, got 3"),
    ('{"platform": {"batch_steps": "convert"}}', 'platform.batch_steps: expected a list, got "convert"'),
    ('{"model": [1]}', "model: expected an object, got [1]"),
    ('{"data": {"labels": 3}}', "data.labels: expected a string or null, got 3"),
    ('{"train": {"pad_to_length": 1.5}}', "train.pad_to_length: expected a whole number or null, got 1.5"),
    ('{"platform": {"schedule": []}}', "platform.schedule: expected an object or null, got []"),
    ('{"model": {"ngram": {"weight": -0.1}}}', "model.ngram.weight: expected a number from "
                                               "0.0 to 1.0, got -0.1"),
    ('{"train": {"label_smoothing": 0.6}}', "train.label_smoothing: expected a number "
                                            "from 0.0 to 0.5, got 0.6"),
    ('{"model": {"pooling": "max"}}', 'model.pooling: expected one of "auto", "cls", "mean", got "max"'),
    ('{"extends": 3}', "the config: extends must name a file, not 3."),
    ('"text"', "the config must be a JSON object of sections."),
])
def test_a_config_mistake_gets_exactly_this_message(text, message):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_the_edges_of_a_range_and_every_choice_are_accepted():
    edges = parse('{"model": {"ngram": {"weight": 1.0}}, "train": {"label_smoothing": 0.0}, '
                  '"data": {"validation_fraction": 0.9, "test_fraction": 0}}')
    assert edges["model"]["ngram"]["weight"] == 1.0 and edges["data"]["validation_fraction"] == 0.9
    assert [parse(json.dumps({"model": {"pooling": p}}))["model"]["pooling"] for p in ("auto", "cls",
                                                                                       "mean")] == [
        "auto", "cls", "mean"]
    nulls = parse('{"model": {"ngram": {"weight": null}}, "data": {"labels": "l.json"}, '
                  '"train": {"learning_rate": 1}}')
    assert nulls["train"]["learning_rate"] == 1
    assert (parse('{"platform": {"timeout_minutes": {"train": 5}}}')["platform"]["timeout_minutes"]
            == {"train": 5})


def test_a_config_file_loads_with_extends_beside_it_and_a_missing_one_is_named(tmp_path):
    from emoji_reco.settings import load

    (tmp_path / "team.json").write_text('{"extends": "aws.json", "deploy": {"endpoint": "team"}}')
    (tmp_path / "mine.json").write_text('{"extends": "team.json", "train": {"epochs": 4}}')
    config = load(str(tmp_path / "mine.json"))
    assert config["train"]["epochs"] == 4 and config["deploy"]["endpoint"] == "team"
    assert config["deploy"]["target"] == "sagemaker"  # from aws.json, found in config/
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "none.json"))
    assert str(caught.value) == f"Config file {tmp_path / 'none.json'} not found."
    (tmp_path / "loop.json").write_text('{"extends": "loop.json"}')
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "loop.json"))
    assert str(caught.value) == "extends: loop.json extends itself (loop.json → loop.json)."
    (tmp_path / "lost.json").write_text('{"extends": "gone.json"}')
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "lost.json"))
    assert str(caught.value) == f"extends: gone.json not found (looked in {tmp_path}, {CONFIG_DIR})."


def test_base_json_extends_nothing_and_a_config_without_extends_extends_it():
    assert parse("{}") == defaults() and "extends" not in defaults()


def test_the_defaults_come_from_the_config_the_package_ships():
    from emoji_reco.settings import files

    assert CONFIG_DIR == files._config_dir() and (CONFIG_DIR / "base.json").is_file()
    assert CONFIG_DIR.name == "config" and (CONFIG_DIR / "aws.json").is_file()


def test_overrides_create_sections_leave_the_original_alone_and_skip_empty_values():
    original = defaults()
    changed = with_overrides(original, {"train.epochs": 7, "data.sample": 0, "data.path": "x.csv"})
    assert (changed["train"]["epochs"] == 7 and changed["data"]["sample"] == 0 and changed["data"]["path"]
            == "x.csv")
    assert original == defaults()  # a copy
    assert with_overrides(original, {}) == original and with_overrides(original,
                                                                       {"train.epochs": ""}) == original
    with pytest.raises(ConfigError) as caught:
        with_overrides(original, {"nosuch.key": 1})
    assert str(caught.value).startswith("nosuch: unknown key")


def test_a_chain_that_comes_back_names_every_file_of_it_and_a_broken_file_names_itself(tmp_path, monkeypatch):
    from emoji_reco.settings import load

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text('{"extends": "b.json"}')
    (tmp_path / "b.json").write_text('{"extends": "a.json"}')
    with pytest.raises(ConfigError) as caught:
        parse('{"extends": "a.json"}')
    assert str(caught.value) == "extends: a.json extends itself (a.json → b.json → a.json)."
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "broken.json"))
    assert str(caught.value).startswith("broken.json is not valid JSON: ")


def test_merging_copies_so_a_change_to_the_result_leaves_both_inputs_alone():
    from emoji_reco.settings import merge

    base, changes = {"a": {"b": [1], "c": 1}}, {"a": {"d": [2]}, "e": {"f": [3]}}
    out = merge(base, changes)
    assert out == {"a": {"b": [1], "c": 1, "d": [2]}, "e": {"f": [3]}}
    out["a"]["b"].append(9)
    out["a"]["d"].append(9)
    out["e"]["f"].append(9)
    assert base == {"a": {"b": [1], "c": 1}} and changes == {"a": {"d": [2]}, "e": {"f": [3]}}


def test_an_empty_override_is_skipped_not_the_end_of_the_overrides():
    changed = with_overrides(defaults(), {"data.path": "", "model.base": None, "train.epochs": 7})
    assert changed["train"]["epochs"] == 7


def test_the_code_is_handed_one_frozen_typed_object_of_every_setting():
    from pydantic import ValidationError

    from emoji_reco.settings import typed

    settings = typed(with_overrides(defaults(),
                                    {"train.precision": "mixed_bfloat16", "train.distribution.port": 2}))
    assert settings.train.precision == "mixed_bfloat16" and settings.train.distribution.port == 2
    assert settings.model_dump() == with_overrides(defaults(), {"train.precision": "mixed_bfloat16",
                                                                "train.distribution.port": 2})
    with pytest.raises(ValidationError, match="frozen"):
        settings.train.epochs = 3
    with pytest.raises(ConfigError) as caught:
        parse('{"train": {"precision": "float16"}}')
    assert str(caught.value) == ('train.precision: expected one of "auto", "float32", "mixed_float16", '
                                 '"mixed_bfloat16", got "float16"')
    with pytest.raises(ConfigError) as caught:
        parse('{"train": {"bucket_boundaries": [8, "16"]}}')
    assert str(caught.value) == 'train.bucket_boundaries.1: expected a whole number, got "16"'


def test_a_chain_is_followed_beside_each_file_wherever_it_runs_and_a_broken_link_names_its_file(
        tmp_path, monkeypatch):
    from emoji_reco.settings import load

    folder = tmp_path / "team"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)  # not the configs' folder
    (folder / "mine.json").write_text('{"extends": "team.json", "train": {"epochs": 5}}')
    (folder / "team.json").write_text('{"extends": "shared.json", "deploy": {"endpoint": "team"}}')
    (folder / "shared.json").write_text('{"extends": "aws.json", "data": {"sample": 9}}')
    config = load(str(folder / "mine.json"))
    assert config["train"]["epochs"] == 5 and config["deploy"]["endpoint"] == "team"
    assert config["data"]["sample"] == 9 and config["deploy"]["target"] == "sagemaker"  # aws.json
    (folder / "shared.json").write_text("{nope")
    with pytest.raises(ConfigError) as caught:
        load(str(folder / "mine.json"))
    assert str(caught.value).startswith("shared.json is not valid JSON: ")


def test_a_key_missing_from_a_whole_config_and_an_unforeseen_error_are_still_one_line_with_the_path():
    from emoji_reco.settings import _problem, typed

    config = defaults()
    del config["train"]["epochs"]
    with pytest.raises(ConfigError) as caught:
        typed(config)
    assert str(caught.value) == ("train.epochs: missing (config/base.json has every key; a config holds what "
                                 "differs)")
    unforeseen = {"type": "value_error", "loc": ("train", "epochs"), "input": 0, "msg": "a bad value"}
    assert _problem(unforeseen) == "train.epochs: expected a bad value, got 0"


def test_the_free_form_keys_are_the_mappings_of_the_sections_and_only_they():
    assert FREE_FORM == {"platform.timeout_minutes", "platform.schedule", "platform.trigger",
                         "platform.remote_environment", "monitor.schedule"}
