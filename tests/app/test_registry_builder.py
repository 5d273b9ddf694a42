"""The registry tells a builder who promotes, instead of showing nothing where the promote form would be."""

from tests.app.conftest import open_page, plain
from tests.app.test_registry import team, trained, versions  # noqa: F401  (fixtures)


def test_a_builder_is_told_that_a_manager_promotes(app_test, team, versions):  # noqa: F811
    at = open_page(app_test(), team.bea, "registry.py", team.project)
    at.selectbox(key="registry_version").select(versions[0].id).run()

    assert not at.exception
    assert plain(at.tabs[0].info) == [
        "Only a manager or an administrator who did not build this model promotes it to production (four-eyes "
        "rule). Once every gate passes, ask one of them."]
    assert not [b for b in at.button if b.label.startswith("Promote")]
