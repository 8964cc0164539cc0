from tests.helpers import make_app


def test_healthz_reports_status_database_version_and_centre(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "version": "0.1.0", "centre": "XH-CY-CY1", "role": "centre"}


def test_healthz_says_degraded_when_the_database_is_unreachable(tmp_path):
    app = make_app(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/kiosk.sqlite3")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "degraded" and response.json["database"] == "unreachable"
