"""How ``lrl.runtime.init_ray`` treats the address it is given (no Ray is started here)."""

from __future__ import annotations

import pytest

from lrl.config import ConfigError
from lrl.runtime import RayConfig, init_ray


@pytest.mark.parametrize("where", ["env", "config"])
def test_a_job_server_url_as_the_ray_address_is_a_config_error(monkeypatch, where):
    """``export RAY_ADDRESS=http://127.0.0.1:8265`` (what ``lrl submit`` reads) made the next
    ``lrl run`` on the laptop fail inside ``ray.init`` with a traceback (exit status 1), after its
    first stage had started."""
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **kw: calls.append(kw))
    url = "http://127.0.0.1:8265"
    monkeypatch.setenv("RAY_ADDRESS", url if where == "env" else "")
    cfg = RayConfig(address=url if where == "config" else None)
    name = "RAY_ADDRESS" if where == "env" else "ray.address"
    with pytest.raises(ConfigError, match=f"{name}=http://127.0.0.1:8265 is a job server.*lrl submit"):
        init_ray(cfg)
    assert calls == []
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # a GCS address (as under a submitted job) is joined
    monkeypatch.setattr("lrl.ray_join.check_join", lambda address, where: None)  # no cluster is there
    init_ray(RayConfig())
    assert calls and calls[0]["address"] == "10.0.0.1:6379"
