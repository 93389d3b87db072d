"""Test-session hooks. The tests marked slow (place and route, whole-dataset training) start first:
under pytest-xdist the rest of the suite then runs beside them on the other worker, instead of the
slowest test starting late and setting the wall time alone (the iCE40 place and route takes 15-20
minutes on these machines)."""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)     # stable: slow ones first
