"""The real server starts under gunicorn with the production config file and answers."""

import requests


def test_gunicorn_serves_register_login_me(server):
    response = requests.post(
        server.url + "/register", json={"name": "live", "email": "live@example.com", "password": "long enough"}
    )
    assert response.status_code == 201
    tokens = requests.post(server.url + "/login", json={"username": "live", "password": "long enough"}).json()
    me = requests.get(server.url + "/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["name"] == "live"
