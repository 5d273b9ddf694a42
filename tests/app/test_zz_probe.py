import json
from tests.app.conftest import open_page, texts, SAMPLE_DATA
from tests.factories import make_project, make_user, make_dataset_version


def test_probe(app_test, db, sqlite_settings):
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
        make_dataset_version(session, sqlite_settings, bea, project, SAMPLE_DATA / "labour_force.csv")
        make_dataset_version(session, sqlite_settings, bea, project, SAMPLE_DATA / "labour_force_batch_drifted.csv")
    at = open_page(app_test(), bea, "datasets.py", project)
    print(at.exception, at.dataframe[0].value.to_dict("records"))
    print([s.options for s in at.selectbox], [s.key for s in at.selectbox])
    tab = at.tabs[1]
    print(texts(tab.markdown), tab.dataframe[0].value.to_dict("records")[:3], [c.proto.spec[:300] for c in tab.get("vega_lite_chart")])
    at.selectbox(key="datasets_key").select("person_id").run()
    print(at.exception, texts(at.tabs[1].markdown))
    at.selectbox(key="datasets_column").select("age").run()
    [chart] = at.get("vega_lite_chart")
    print(json.loads(chart.proto.spec).get("title"))
