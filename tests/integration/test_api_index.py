"""New-user finding 19: the API's root answers a small JSON index; every other unknown path under
/api/ answers an RFC 9457 problem document (never Django's HTML 404); HEAD /api/v1/health answers
like GET."""

from __future__ import annotations

from typing import Any

import pytest

import tarifa

pytestmark = pytest.mark.django_db


def test_the_api_root_is_a_json_index(client: Any) -> None:
    response = client.get("/api/v1/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "name": "Tarifa API",
        "version": tarifa.__version__,
        "links": {"docs": "/api/v1/docs", "openapi": "/api/v1/openapi.json", "health": "/api/v1/health"},
    }
    for link in response.json()["links"].values():  # each link answers
        assert client.get(link).status_code == 200, link


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nope"),
        ("get", "/api/v1/cdrs/extra/segments"),
        ("post", "/api/v1/nope"),
        ("delete", "/api/v2/calls"),
        ("get", "/api/"),
        ("get", "/api"),
    ],
)
def test_an_unknown_api_path_is_a_problem_document(client: Any, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "about:blank" and problem["title"] == "Not found" and problem["status"] == 404
    assert problem["instance"] == path
    assert problem["detail"] == f"No API operation at {path}: the operations are listed at /api/v1/docs"


def test_the_api_root_without_its_slash_says_where_it_is(client: Any) -> None:
    response = client.get("/api/v1")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "No API operation at /api/v1; did you mean /api/v1/?"


def test_paths_outside_the_api_keep_the_html_pages(client: Any) -> None:
    response = client.get("/apinope")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_head_on_health_answers_like_get(client: Any) -> None:
    get = client.get("/api/v1/health")
    head = client.head("/api/v1/health")
    assert get.status_code == 200 and head.status_code == 200
    assert head["Content-Type"] == get["Content-Type"] and head.content == b""


def test_the_index_and_head_are_documented(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/"]
    assert {"get", "head"} <= set(paths["/api/v1/health"])
