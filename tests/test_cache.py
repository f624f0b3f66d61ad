"""The stage cache: keys from settings and upstream stages, a half-written stage cleared."""

from galtaxa.cache import RunCache


def test_stage_cache_keys_and_half_written_stage(tmp_path):
    cache = RunCache(tmp_path)
    a = cache.stage("read", {"size": 100})
    b = cache.stage("encode", {"name": "x"}, upstream=(a,))
    assert cache.stage("read", {"size": 100}).key == a.key
    assert cache.stage("read", {"size": 64}).key != a.key
    assert cache.stage("encode", {"name": "x"}, upstream=(cache.stage("read", {"size": 64}),)).key != b.key
    a.begin()
    (a.path / "partial.npy").write_bytes(b"half")
    assert not a.done
    a.begin()  # a crash left a half-written stage: it is cleared
    assert not (a.path / "partial.npy").exists()
    a.finish({"n": 3})
    assert a.done and a.summary() == {"n": 3}
