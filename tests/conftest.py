import pytest

from data.schema import Catalog, Interactions
from data.settings import SAMPLE_DIR


@pytest.fixture(scope="session")
def office() -> tuple[Catalog, Interactions]:
    """The bundled real sample (2,417 Amazon office products, 4,905 shoppers), loaded once per test run."""
    from data.load import load_catalog, load_interactions

    catalog, _ = load_catalog(SAMPLE_DIR / "items.jsonl")
    interactions, _ = load_interactions(SAMPLE_DIR / "interactions.jsonl", catalog)
    return catalog, interactions
