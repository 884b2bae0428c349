"""ImageManifest.problems() on arbitrary JSON: never raises, stable, and agrees with from_json()."""

import copy

import hypothesis
from manifests import FULL, check_document

st = hypothesis.strategies

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _paths(node, path=()):
    """Every path into ``node``, as tuples of keys and indexes."""
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*path, key))


PATHS = [path for path in _paths(FULL) if path]


@hypothesis.given(JSON)
def test_any_json(document):
    """Any JSON value gets a stable list of problems."""
    check_document(document)


@hypothesis.given(st.sampled_from(PATHS), JSON)
def test_full_manifest_with_one_value_replaced(path, value):
    """The full manifest with any one value replaced by any JSON is handled."""
    document = copy.deepcopy(FULL)
    *parents, last = path
    container = document
    for step in parents:
        container = container[step]
    container[last] = value
    check_document(document)
