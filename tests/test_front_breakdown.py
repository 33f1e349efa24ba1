"""The front's error breakdown: kinds of structure from split files or their source records."""

from __future__ import annotations

import json

import ase

from benchmarks.front_breakdown import kind_of, table


def test_kinds_come_from_config_type_or_the_source_record(tmp_path):
    source = tmp_path / "training.json"
    source.write_text(json.dumps([{"group": "Elastic", "description": "strain 0.01"},
                                  {"group": "AIMD-NVT", "description": "Snapshot 7 of 40 of AIMD NVT simulation at 6000 K"}]))
    atoms = ase.Atoms("Mo", info={"source": str(source), "source_index": 1})
    assert kind_of(atoms, None) == "AIMD-NVT"
    assert kind_of(atoms, ("description", r"at (\d+ K)")) == "AIMD-NVT 6000 K"
    elastic = ase.Atoms("Mo", info={"source": str(source), "source_index": 0})
    assert kind_of(elastic, ("description", r"at (\d+ K)")) == "Elastic"  # no match: the kind alone
    labelled = ase.Atoms("Mo", info={"config_type": "Surface", "source": str(source), "source_index": 0})
    assert kind_of(labelled, None) == "Surface"  # the split file's own label wins
    assert kind_of(ase.Atoms("H", info={"source": "mol.npz", "source_index": 3}), None) == ""


def test_table_lists_every_kind_per_model():
    by = {"A": {"frames": 2, "force_mae_meV_A": 10.0}, "B": {"frames": 1, "force_mae_meV_A": 30.0}}
    text = table({"test": {"mlip": {"force_mae_meV_A": 16.7, "by_config_type": by},
                           "MACE": {"force_mae_meV_A": 20.0, "by_config_type": {"A": by["A"]}}}})
    lines = text.splitlines()
    assert lines[0] == "| file | model | A | B | all |"
    assert lines[2] == "| test | mlip | 10.0 (2) | 30.0 (1) | 16.7 |" and lines[3] == "| test | MACE | 10.0 (2) |  | 20.0 |"


def test_front_table_lists_every_mlip_variant_beside_mace(tmp_path, monkeypatch):
    import benchmarks.front_table as front_table

    def row(package, name, force, epochs):
        return {"package": package, "name": name, "epochs": epochs, "cpu_s": 720.0, "us_per_atom_step": 500.0,
                "test": {"test": {"force_mae_meV_A": force, "energy_mae_meV": 2.0, "energy_mae_offset_removed_meV": 1.0}}}

    rows = [row("mlip", "medium", 10.0, 40), row("mlip", "large", 8.0, 12), row("mace", "MACE", 20.0, 15)]
    (tmp_path / "accuracy_front_two.json").write_text(json.dumps({"results": {"rows": rows}}))
    (tmp_path / "accuracy_front_one.json").write_text(json.dumps({"results": {"rows": rows[:1] + rows[2:]}}))
    monkeypatch.setattr(front_table, "RESULTS", tmp_path)
    two = front_table.rows_for("two")
    assert [line.split(" | ")[0] for line in two] == ["| two: medium", "| two: large"]
    assert "**0.50**" in two[0] and "**0.40**" in two[1] and "40 / 15" in two[0]
    assert front_table.rows_for("one")[0].startswith("| one | test | 40 / 15 |")  # one variant: the dataset alone
