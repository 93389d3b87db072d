"""Package boundaries: firmware_host depends on edgelearn, never the reverse; no import cycles
among the modules of either package; the board verbs reach the ``edgelearn`` command through
the ``edgelearn.commands`` entry point, and without it the core verbs still work; one module
(edgelearn.buildcache) spells the runtime's source list."""
import ast
import re
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

import edgelearn.cli as cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edgelearn", "firmware_host")
BOARD_VERBS = ("board", "push", "stream", "pull", "stats", "keys")
FLEET_VERBS = ("fleet",)            # firmware_host.fleet, its own entry point (docs/fleet.md)
CORE_VERBS = ("train", "eval", "calibrate", "info", "compile", "profile", "import", "export")
MODEL = str(ROOT / "models" / "digits-stop.json")


def modules(package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package) for every module of ``package``."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "__pycache__" in path.parts or "_data" in path.relative_to(ROOT).parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def imported(module: str, is_pkg: bool, tree: ast.AST) -> list[tuple[str, int]]:
    """Every name an import statement anywhere in the module (top level, functions, classes)
    imports, with its line: ``import a.b`` gives a.b; ``from a import b`` gives a and a.b
    (b may be a module); relative imports are resolved. Calls of importlib.import_module or
    __import__ with a constant name count too."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            out.append((prefix, node.lineno))
            out += [(f"{prefix}.{a.name}", node.lineno) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__"):
                out.append((node.args[0].value, node.lineno))
    return out


def import_graph() -> dict[str, set[str]]:
    mods = {m: v for pkg in PACKAGES for m, v in modules(pkg).items()}
    graph = {}
    for mod, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[mod] = {name for name, _ in imported(mod, is_pkg, tree) if name in mods and name != mod}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(sorted(comp))
    return out


def test_edgelearn_never_imports_firmware_host():
    offenders = {}
    for mod, (path, is_pkg) in modules("edgelearn").items():
        for name, line in imported(mod, is_pkg, ast.parse(path.read_text(), str(path))):
            if name == "firmware_host" or name.startswith("firmware_host."):
                offenders.setdefault(f"{path.relative_to(ROOT)}:{line}", name)
    offenders = [f"{where}: {name}" for where, name in offenders.items()]
    assert offenders == [], "edgelearn must not import firmware_host (it depends on edgelearn):\n" + \
        "\n".join(offenders)


def test_importing_edgelearn_loads_no_firmware_host():
    code = ("import sys, importlib, pkgutil, edgelearn\n"
            "for m in pkgutil.walk_packages(edgelearn.__path__, 'edgelearn.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'firmware_host'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_no_import_cycles():
    graph = import_graph()
    assert "edgelearn.cli" in graph and "firmware_host.cli" in graph
    assert "edgelearn.cli_util" in graph["firmware_host.cli"]           # the graph sees relative and absolute
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == [], f"import cycles (strongly connected components): {cycles}"


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(c for c in strongly_connected(graph) if len(c) > 1) == [["a", "b", "c"]]


# -- the board verbs through the entry point --------------------------------------------------

def test_the_board_verbs_are_an_installed_entry_point():
    [ep] = [e for e in entry_points(group=cli.COMMANDS_GROUP) if e.name == "board"]
    assert ep.value == "firmware_host.cli:add_commands", \
        "refresh the editable install (pip install --no-deps -e .) after changing setup.cfg"
    import firmware_host.cli as fcli
    assert ep.load() is fcli.add_commands


def test_help_lists_core_and_board_verbs():
    r = subprocess.run([sys.executable, "-m", "edgelearn.cli", "--help"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    verbs = re.search(r"\{([a-z,]+)\}", r.stdout).group(1).split(",")
    assert verbs == [*CORE_VERBS, *BOARD_VERBS, *FLEET_VERBS]
    assert r.stderr == ""


def test_board_errors_are_one_line(capsys):
    from firmware_host import cli as fcli
    from firmware_host.fleet import cli as fleet_cli
    assert set(cli.build_parser().command_errors) == set(fcli.ERRORS) | set(fleet_cli.ERRORS)


def fake_entry_points(*eps):
    def entry_points(group):
        assert group == cli.COMMANDS_GROUP
        return list(eps)
    return entry_points


def run(capsys, *argv):
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_without_the_entry_point_the_core_verbs_work_and_board_verbs_are_absent(monkeypatch, capsys):
    monkeypatch.setattr(cli, "entry_points", fake_entry_points())
    assert cli.build_parser().command_errors == ()
    code, out, err = run(capsys, "info", MODEL)
    assert code == 0 and "digits-stop" in out, err
    code, _, err = run(capsys, "board", "list")
    assert code == 2 and "invalid choice: 'board'" in err


def test_an_entry_point_of_a_package_not_installed_is_skipped(monkeypatch, capsys):
    missing = EntryPoint("board", "no_such_package_xyz.cli:add_commands", cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli, "entry_points", fake_entry_points(missing))
    code, out, err = run(capsys, "info", MODEL)
    assert code == 0 and err == "" and "digits-stop" in out


def test_a_broken_entry_point_is_reported_and_the_core_still_works(monkeypatch, capsys):
    broken = EntryPoint("board", "firmware_host.no_such_module:add_commands", cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli, "entry_points", fake_entry_points(broken))
    code, out, err = run(capsys, "info", MODEL)
    assert code == 0 and "digits-stop" in out
    assert "warning: the 'board' commands (firmware_host.no_such_module:add_commands) are unavailable" in err


def test_an_entry_point_adds_verbs_and_its_errors_are_one_line(monkeypatch, capsys):
    class PluginError(OSError):
        pass

    def add_commands(sub):
        p = sub.add_parser("hello")
        p.set_defaults(run=lambda args: (_ for _ in ()).throw(PluginError("the plugin refused")))
        return (PluginError,)

    ep = EntryPoint("hello", "x:y", cli.COMMANDS_GROUP)
    monkeypatch.setattr(EntryPoint, "load", lambda self: add_commands)
    monkeypatch.setattr(cli, "entry_points", fake_entry_points(ep))
    code, _, err = run(capsys, "hello")
    assert code == 2 and err == "edgelearn: error: the plugin refused\n"


# -- one list of the runtime's sources ---------------------------------------------------------

@pytest.mark.parametrize("source", ["el_kernels.c", "el_spide.c", "el_static.c"])
def test_the_runtime_source_list_is_spelled_once(source):
    spelled = [str(path.relative_to(ROOT)) for pkg in PACKAGES for path, _ in modules(pkg).values()
               if f'"{source}"' in path.read_text() or f"'{source}'" in path.read_text()]
    assert spelled == ["edgelearn/buildcache.py"]
