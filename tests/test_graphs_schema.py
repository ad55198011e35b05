import pytest
import yaml

from sync_tva.errors import SchemaError
from sync_tva.graphs import list_schemas, load_schema, schema_from_dict


def write(tmp_path, data, name="custom.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"name": "t", "node_types": ["text", "audio", "visual"], "relations": {"V-A": {"src": "visual", "dst": "audio"}}}


def test_shipped_schema_has_three_relations_both_ways():
    schema = load_schema("utterance")
    assert set(schema.node_types) == {"text", "audio", "visual"}
    assert {e.name for e in schema.edges} == {"V-A", "A-V", "T-V", "V-T", "A-T", "T-A"}
    for ntype in schema.node_types:
        assert schema.in_edges(ntype), f"{ntype} receives no relation"
        assert any(e.src == ntype for e in schema.edges), f"{ntype} sends no relation"


@pytest.mark.parametrize("name", list_schemas())
def test_every_shipped_schema_loads(name):
    assert load_schema(name).edges


def test_load_by_path_and_directed(tmp_path):
    schema = load_schema(write(tmp_path, {**BASE, "directed": True}))
    assert schema.canonical_etypes == [("visual", "V-A", "audio")]


def test_reverse_name_override(tmp_path):
    data = {**BASE, "relations": {"sees": {"src": "visual", "dst": "audio", "reverse": "seen_by"}}}
    assert [e.name for e in load_schema(write(tmp_path, data)).edges] == ["sees", "seen_by"]


def test_intra_edges(tmp_path):
    schema = load_schema(write(tmp_path, {**BASE, "intra": {"text": {"pattern": "aligned", "window": 0.1}}}))
    assert ("text", "text-text", "text") in schema.canonical_etypes


@pytest.mark.parametrize(
    "change, message",
    [
        ({"node_types": ["text", "smell"]}, r"node_types\[1\]: unknown node type 'smell'"),
        ({"relations": {"V-A": {"src": "visul", "dst": "audio"}}}, r"relations\.V-A\.src: unknown node type 'visul'"),
        ({"node_types": ["text", "audio"]}, r"relations\.V-A\.src: node type 'visual' is not declared"),
        ({"relations": {"V-A": {"src": "visual", "dst": "audio", "pattern": "aligned"}}}, r"relations\.V-A\.window: required"),
        ({"relations": {"V-A": {"src": "visual", "dst": "audio", "pattern": "aligned", "window": 0}}}, r"relations\.V-A\.window: 0"),
        ({"relations": {"V-A": {"src": "visual", "dst": "audio", "pattern": "aligned", "window": 1.5}}}, r"window: 1\.5"),
        ({"relations": {"V-A": {"src": "visual", "dst": "audio", "pattern": "star"}}}, r"relations\.V-A\.pattern: 'star'"),
        ({"relations": {"V-A": {"src": "visual", "dst": "audio", "weight": 2}}}, r"relations\.V-A: unknown keys \['weight'\]"),
        ({"relations": {"V-V": {"src": "visual", "dst": "visual"}}}, r"intra"),
        ({"relations": {"X": {"src": "visual", "dst": "audio"}, "rev-X": {"src": "text", "dst": "audio"}}}, r"used twice"),
        ({"intra": {"smell": {"pattern": "full"}}}, r"intra\.smell: unknown node type"),
        ({"directed": "yes"}, r"directed: expected true or false"),
        ({"colour": "red"}, r"schema: unknown keys \['colour'\]"),
    ],
)
def test_schema_errors_name_file_and_key(tmp_path, change, message):
    path = write(tmp_path, {**BASE, **change})
    with pytest.raises(SchemaError, match=message) as err:
        load_schema(path)
    assert str(path) in str(err.value)


def test_unknown_schema_name_lists_shipped():
    with pytest.raises(SchemaError, match=r"unknown graph schema 'nope'.*utterance"):
        load_schema("nope")


def test_invalid_yaml_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("relations: [unclosed\n")
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_schema(path)


def test_restrict_drops_edges_of_missing_types():
    schema = load_schema("utterance").restrict(["text", "audio"])
    assert schema.node_types == ("text", "audio")
    assert {e.name for e in schema.edges} == {"A-T", "T-A"}
    assert load_schema("utterance").restrict(["text"]).edges == ()


def test_restrict_to_undeclared_type_is_an_error():
    schema = schema_from_dict({"node_types": ["text", "audio"], "relations": {"A-T": {"src": "audio", "dst": "text"}}}, "mem.yaml")
    with pytest.raises(SchemaError, match=r"mem\.yaml.*\['visual'\]"):
        schema.restrict(["text", "visual"])
