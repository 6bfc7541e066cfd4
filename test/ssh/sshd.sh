#!/usr/bin/env bash
# Starts a PRIVATE OpenSSH server on a loopback port for the SSH tier, as the current user, with
# a generated host key, a generated client key and its own config files. Nothing is written to
# /etc/ssh or ~/.ssh. Installs Debian's openssh-server (and rsync) first when missing.
#
#   bash test/ssh/sshd.sh start DIR   -> DIR/ssh_config (Host qls-loopback), DIR/sshd.pid, DIR/port
#   bash test/ssh/sshd.sh stop DIR
set -euo pipefail
cmd=${1:?usage: sshd.sh start|stop DIR}
dir=${2:?usage: sshd.sh start|stop DIR}

if [ "$cmd" = stop ]; then
  [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
  exit 0
fi

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  echo "[ssh] installing openssh-server (Debian)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client >&2
fi
# sshd refuses to start without its privilege-separation directory (a runtime dir, not config).
[ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd

mkdir -p "$dir"
chmod 700 "$dir"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" -C qls-test-host
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519" -C qls-test-client
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=$(id -un)
cat > "$dir/sshd_config" <<CFG
ListenAddress 127.0.0.1:$port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
LogLevel ERROR
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
CFG
echo "127.0.0.1 $(cut -d' ' -f1-2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$dir/host_ed25519.pub")" >> "$dir/known_hosts"
cat > "$dir/ssh_config" <<CFG
Host qls-loopback
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $dir/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
  BatchMode yes
  LogLevel ERROR
CFG
echo "$port" > "$dir/port"
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
for _ in $(seq 50); do
  ssh -F "$dir/ssh_config" qls-loopback true 2>/dev/null && { echo "[ssh] private sshd on 127.0.0.1:$port" >&2; exit 0; }
  sleep 0.1
done
echo "[ssh] the private sshd did not answer; log:" >&2
cat "$dir/sshd.log" >&2
exit 1
