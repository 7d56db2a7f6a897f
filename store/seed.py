"""Example SOPs that make a fresh installation usable at once, kept as data in `examples/`."""

from importlib.resources import files

from store.db import create_engine, create_transaction_factory
from store.migrate import migrate
from store.sops import SopCatalog, SopDefinition

SEED_PUBLISHER = "system:seed"
# Publishing order: the one every newcomer and the benchmark reach for comes first.
EXAMPLE_IDS = ("loto-press-7", "confined-space-entry", "forklift-preshift")


def load_example(sop_id: str) -> SopDefinition:
    """Reads one example SOP from the package's data files, validated like a published one."""
    text = files("store").joinpath("examples", f"{sop_id}.json").read_text(encoding="utf-8")
    return SopDefinition.model_validate_json(text)


EXAMPLE_SOPS = tuple(load_example(sop_id) for sop_id in EXAMPLE_IDS)
LOTO_PRESS_7 = EXAMPLE_SOPS[0]


async def seed_examples(catalog: SopCatalog) -> list[str]:
    """Publishes each example SOP whose id is not in the catalog yet; returns the ids added."""
    added = []
    for definition in EXAMPLE_SOPS:
        if await catalog.publish_if_new(definition, SEED_PUBLISHER) is not None:
            added.append(definition.id)
    return added


async def migrate_and_seed(database_url: str) -> list[str]:
    """Migrates the database to head and adds the example SOPs it lacks."""
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        return await seed_examples(SopCatalog(create_transaction_factory(engine)))
    finally:
        await engine.dispose()
