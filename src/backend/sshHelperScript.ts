/**
 * The small Python helper that the SSH backend copies to the remote host and runs there with the
 * remote's own Python (before our package exists, so it uses the standard library only). Every
 * answer is one JSON line on stdout; the access token travels only on that stdout, inside the ssh
 * channel, never on a command line. Subcommands: bootstrap, check, serve, stop, manifest, put.
 * No `vscode` import.
 */

/** Version of the helper's command-line contract; part of its file name on the remote. */
export const HELPER_VERSION = 1;

/** The helper's source. */
export const HELPER_SOURCE = String.raw`
import hashlib, json, os, re, signal, subprocess, sys, time

def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def venv_python(d):
    return os.path.join(d, "venv", "bin", "python")

def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default

def bootstrap(d, python, wheel, stamp, base):
    os.makedirs(d, mode=0o700, exist_ok=True)
    venv = os.path.join(d, "venv")
    creator = base or python
    if not os.path.exists(venv_python(d)):
        subprocess.run([creator, "-m", "venv", venv], check=True, stdout=sys.stderr)
    if base:
        # Layer the packages of an existing environment (e.g. a site PyTorch) under our venv.
        paths = json.loads(subprocess.run([base, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
                                          check=True, capture_output=True, text=True).stdout)
        own = subprocess.run([venv_python(d), "-c", "import site; print(site.getsitepackages()[0])"],
                             check=True, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(own, "_qlora_studio_base.pth"), "w") as f:
            f.write("\n".join(paths) + "\n")
    cmd = [venv_python(d), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--force-reinstall", wheel]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        out({"ok": False, "error": "pip could not install the backend: " + (r.stderr.strip() or r.stdout.strip())[-2000:]})
        return 1
    report = check(d, install_missing=True)
    with open(os.path.join(d, "stamp"), "w") as f:
        f.write(stamp)
    out({"ok": True, **report})
    return 0

def requirement_names(py):
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps([r for r in (m.requires('qlora-studio') or []) if 'extra ==' not in r]))")
    reqs = json.loads(subprocess.run([py, "-c", code], check=True, capture_output=True, text=True).stdout)
    return [(re.match(r"[A-Za-z0-9_.\-]+", r).group(0), r.split(";")[0].strip()) for r in reqs]

def check(d, install_missing=False):
    py = venv_python(d)
    code = ("import importlib.metadata as m, json, sys; names = json.loads(sys.argv[1]); missing = []\n"
            "for n in names:\n"
            "    try: m.version(n)\n"
            "    except m.PackageNotFoundError: missing.append(n)\n"
            "print(json.dumps(missing))")
    reqs = requirement_names(py)
    missing = json.loads(subprocess.run([py, "-c", code, json.dumps([n for n, _ in reqs])], check=True, capture_output=True, text=True).stdout)
    installable = [spec for n, spec in reqs if n in missing and n != "torch"]
    if install_missing and installable:
        r = subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *installable], capture_output=True, text=True)
        if r.returncode == 0:
            missing = [n for n in missing if n == "torch"]
    probe = ("import json\nr = {}\n"
             "try:\n import torch; r['torch'] = torch.__version__; r['cuda'] = torch.version.cuda; r['gpus'] = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
             "except Exception as e: r['torch_error'] = str(e)\n"
             "try:\n import bitsandbytes as b; r['bitsandbytes'] = b.__version__\n"
             "except Exception as e: r['bitsandbytes_error'] = str(e)\n"
             "print(json.dumps(r))")
    p = subprocess.run([py, "-c", probe], capture_output=True, text=True)
    env = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 and p.stdout.strip() else {"torch_error": p.stderr[-500:]}
    problems = []
    pip = py + " -m pip install"
    if "torch" in missing or "torch_error" in env:
        problems.append({"what": "PyTorch is missing: install the build for your CUDA driver", "fix": pip + " torch --index-url https://download.pytorch.org/whl/cu124"})
    elif not env.get("gpus"):
        problems.append({"what": "PyTorch sees no CUDA GPU (torch " + str(env.get("torch")) + ", CUDA " + str(env.get("cuda")) + "): runs will use the CPU",
                         "fix": "nvidia-smi; then " + pip + " --force-reinstall torch --index-url https://download.pytorch.org/whl/cu124"})
    if "bitsandbytes_error" in env:
        problems.append({"what": "bitsandbytes does not load: " + env["bitsandbytes_error"][:300], "fix": pip + " -U bitsandbytes"})
    for n in missing:
        if n not in ("torch", "bitsandbytes"):
            problems.append({"what": "missing package " + n, "fix": pip + " " + n})
    report = {"env": env, "problems": problems}
    with open(os.path.join(d, "check.json"), "w") as f:
        json.dump(report, f)
    return report

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except (OSError, TypeError):
        return False

def server_info(runs):
    try:
        with open(os.path.join(runs, ".server", "server.json")) as f:
            info = json.load(f)
        return info if alive(int(info.get("pid", 0))) else None
    except (OSError, ValueError):
        return None

def stop_server(info):
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)

def serve(d):
    runs = os.path.join(d, "runs")
    stamp = read(os.path.join(d, "stamp"))
    info = server_info(runs)
    reused = bool(info) and read(os.path.join(d, "server-stamp")) == stamp
    if info and not reused:
        stop_server(info)
    if not reused:
        exe = os.path.join(d, "venv", "bin", "qlora-studio")
        r = subprocess.run([exe, "serve", "--detach", "--runs-dir", runs, "--port", "0"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        line = next((l for l in r.stdout.splitlines() if l.startswith("QLORA_STUDIO_READY ")), None)
        if r.returncode != 0 or not line:
            out({"ok": False, "error": "the backend did not start on the remote: " + (r.stderr.strip() or r.stdout.strip())[-2000:] + " (log: " + os.path.join(runs, ".server", "server.log") + ")"})
            return 1
        info = json.loads(line[len("QLORA_STUDIO_READY "):])
        with open(os.path.join(d, "server-stamp"), "w") as f:
            f.write(stamp)
    token = read(info["token_file"])
    out({"ok": True, "reused": reused, "ready": info, "token": token, "runs_dir": runs})
    return 0

def sha_of(path, index):
    st = os.stat(path)
    key = [st.st_size, st.st_mtime_ns]
    hit = index.get(path)
    if hit and hit[:2] == key:
        return hit[2]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    index[path] = key + [h.hexdigest()]
    return h.hexdigest()

def index_file(root):
    return os.path.join(root, ".qls-sync-index.json")

def load_index(root):
    try:
        with open(index_file(root)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}

def save_index(root, index):
    tmp = index_file(root) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(index, f)
    os.replace(tmp, index_file(root))

def part_of(path, sha):
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".qls-part-" + sha[:16])

def manifest(root):
    files = json.load(sys.stdin)
    os.makedirs(root, exist_ok=True)
    index = load_index(root)
    answer = {}
    for f in files:
        path = os.path.join(root, f["path"])
        if os.path.isfile(path) and os.path.getsize(path) == f["size"] and sha_of(path, index) == f["sha256"]:
            answer[f["path"]] = -1
            continue
        part = part_of(path, f["sha256"])
        answer[f["path"]] = os.path.getsize(part) if os.path.isfile(part) and os.path.getsize(part) <= f["size"] else 0
    save_index(root, index)
    out({"ok": True, "offsets": answer})
    return 0

def put(root, rel, sha, offset, size):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = part_of(path, sha)
    h = hashlib.sha256()
    mode = "r+b" if offset > 0 and os.path.exists(part) else "wb"
    with open(part, mode) as f:
        if mode == "r+b":
            for chunk in iter(lambda: f.read(min(1 << 22, offset - f.tell())) if f.tell() < offset else b"", b""):
                h.update(chunk)
            if f.tell() != offset:
                out({"ok": False, "error": "partial file shorter than the resume offset"})
                return 1
            f.truncate(offset)
        inp = sys.stdin.buffer
        while True:
            chunk = inp.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
    if os.path.getsize(part) != size:
        out({"ok": False, "error": "incomplete upload (" + str(os.path.getsize(part)) + " of " + str(size) + " bytes); it resumes on the next sync"})
        return 1
    if h.hexdigest() != sha:
        os.unlink(part)
        out({"ok": False, "error": "content hash mismatch after upload; the file changed while it was sent"})
        return 1
    os.replace(part, path)
    index = load_index(root)
    st = os.stat(path)
    index[path] = [st.st_size, st.st_mtime_ns, sha]
    save_index(root, index)
    out({"ok": True})
    return 0

def main(argv):
    cmd = argv[0]
    if cmd == "bootstrap":
        return bootstrap(argv[1], argv[2], argv[3], argv[4], argv[5] if len(argv) > 5 and argv[5] else None)
    if cmd == "check":
        return out({"ok": True, **json.load(open(os.path.join(argv[1], "check.json")))}) or 0
    if cmd == "serve":
        return serve(argv[1])
    if cmd == "stop":
        info = server_info(os.path.join(argv[1], "runs"))
        if info:
            stop_server(info)
        return out({"ok": True, "stopped": bool(info)}) or 0
    if cmd == "manifest":
        return manifest(argv[1])
    if cmd == "put":
        return put(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))
    out({"ok": False, "error": "unknown helper command " + cmd})
    return 2

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:
        out({"ok": False, "error": type(e).__name__ + ": " + str(e)})
        sys.exit(1)
`;
