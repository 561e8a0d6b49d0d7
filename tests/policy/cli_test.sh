#!/usr/bin/env bash
# tests/policy/cli_test.sh BIN SRC — postly-policy's commands, outputs and exit codes.
set -uo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect_rc() { # WANT DESC CMD...
  local want=$1 desc=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else bad "$desc: exit $rc, want $want"; cat "$tmp/out" "$tmp/err"; fi
}
policy=$src/policy/default.policy

# scopes: one BIT NAME line per scope, identical to the lock
expect_rc 0 "scopes" "$bin" scopes
grep -v '^#' "$src/policy/scopes.lock" | grep -v '^$' >"$tmp/lock"
cmp -s "$tmp/out" "$tmp/lock" && ok "scopes == scopes.lock" || bad "scopes differs from scopes.lock"
expect_rc 0 "scopes --json" "$bin" scopes --json
grep -q '"bit":30,"name":"analytics:x:read"' "$tmp/out" && ok "scopes json" || bad "scopes json"

# check: the shipped policy is clean (lock found next to it)
expect_rc 0 "check default" "$bin" check "$policy"
grep -q "clean (scope lock checked)" "$tmp/out" && ok "check says clean" || bad "check output"
expect_rc 0 "check --json default" "$bin" check --json "$policy"
grep -q '"errors":0,"warnings":0,"dropped":0,"findings":\[\]' "$tmp/out" && ok "check json" || bad "check json"

# findings: exit 1, FILE:LINE:COL
printf 'role owner grant=*\ntool del all=posts:delete\n' >"$tmp/f.policy"
expect_rc 1 "check findings" "$bin" check --no-lock "$tmp/f.policy"
grep -q "^$tmp/f.policy:2:6: warning: tool 'del' needs destructive" "$tmp/out" && ok "finding format" || bad "finding format"
# unknown names are findings for check (1) but make the file unusable for compile (2)
printf 'tool t all=posts:frob\n' >"$tmp/u.policy"
expect_rc 1 "check unknown name" "$bin" check --no-lock "$tmp/u.policy"
grep -q "^$tmp/u.policy:1:12: error: unknown scope 'posts:frob'" "$tmp/out" && ok "unknown name format" || bad "unknown name format"
expect_rc 2 "compile unknown name" "$bin" compile "$tmp/u.policy"
# a moved bit against the lock
printf '0 workspace:read\n1 posts:read\n' >"$tmp/scopes.lock"
expect_rc 1 "check lock mismatch" "$bin" check --lock "$tmp/scopes.lock" "$policy"
grep -q "gives bit 1 to 'workspace:list' but the lock to 'posts:read'" "$tmp/out" && ok "lock finding" || bad "lock finding"

# syntax errors: exit 2, FILE:LINE:COL on stderr
printf 'version 1\nfrobnicate\n' >"$tmp/s.policy"
expect_rc 2 "check syntax error" "$bin" check "$tmp/s.policy"
grep -q "^$tmp/s.policy:2:1: error: unknown statement 'frobnicate'" "$tmp/err" && ok "syntax format" || bad "syntax format"
head -c 3000 /dev/urandom >"$tmp/g.policy"
expect_rc 2 "check garbage" "$bin" check "$tmp/g.policy"
expect_rc 2 "check missing file" "$bin" check "$tmp/nope.policy"
expect_rc 2 "check missing lock" "$bin" check --lock "$tmp/nope.lock" "$policy"
grep -q "cannot open scope lock file" "$tmp/err" && ok "missing lock message" || bad "missing lock message"
expect_rc 2 "check --lock with --no-lock" "$bin" check --no-lock --lock "$src/policy/scopes.lock" "$policy"

# compile: deterministic, one bundle line per bundle
expect_rc 0 "compile" "$bin" compile "$policy"
cp "$tmp/out" "$tmp/c1"
"$bin" compile "$policy" >"$tmp/c2"
cmp -s "$tmp/c1" "$tmp/c2" && ok "compile deterministic" || bad "compile differs between runs"
[ "$(grep -cE '^bundle [a-z-]+ 0x[0-9a-f]{16} ' "$tmp/c1")" = 4 ] && ok "4 bundle lines" || bad "bundle lines"

# explain / who-can / diff / test / summary
expect_rc 0 "explain" "$bin" explain "$policy" --tool postly_publish_post --class dynamic --bundle campaign-operator
grep -q "^decision   DENY_SCOPE" "$tmp/out" && ok "explain decision" || bad "explain decision"
expect_rc 0 "explain json" "$bin" explain "$policy" --tool postly_delete_post --scopes "posts:delete,posts:read" --class dynamic --json
grep -q '"verdict":"DENY_POLICY"' "$tmp/out" && ok "explain json verdict" || bad "explain json"
expect_rc 0 "explain --role" "$bin" explain "$policy" --role viewer --bundle publishing-assistant
grep -q "^scope posts:publish denied role:viewer$" "$tmp/out" && ok "explain --role reason" || bad "explain --role"
expect_rc 2 "explain --tool and --role" "$bin" explain "$policy" --role viewer --tool postly_get_post
expect_rc 2 "explain unknown tool" "$bin" explain "$policy" --tool nope
expect_rc 2 "explain bad scope" "$bin" explain "$policy" --tool postly_get_post --scopes posts:frob
expect_rc 0 "who-can" "$bin" who-can "$policy" posts:publish
grep -q "^bundle publishing-assistant$" "$tmp/out" && ok "who-can bundle" || bad "who-can"
expect_rc 2 "who-can unknown scope" "$bin" who-can "$policy" posts:frob
expect_rc 0 "diff same" "$bin" diff "$policy" "$policy"
{ cat "$policy"; echo "forbid f-more class=cimd scopes=posts:publish"; } >"$tmp/d.policy"
expect_rc 1 "diff changed" "$bin" diff "$policy" "$tmp/d.policy"
grep -q "^workspace \* class cimd less-permissive -posts:publish" "$tmp/out" && ok "diff label" || bad "diff label"
expect_rc 0 "diff --json same" "$bin" diff --json "$policy" "$policy"
grep -q '"changed":0}$' "$tmp/out" && ok "diff json unchanged" || bad "diff json unchanged"
expect_rc 1 "diff --json changed" "$bin" diff --json "$policy" "$tmp/d.policy"
grep -q '{"workspace":"\*","class":"cimd","label":"less-permissive","added":\[\],"removed":\["posts:publish"\]' "$tmp/out" &&
  ok "diff json label" || bad "diff json label"
grep -q '"changed":1}$' "$tmp/out" && ok "diff json count" || bad "diff json count"

# test: the cases file names its policy; POLICY CASES holds another policy to the same cases
expect_rc 0 "test default cases" "$bin" test "$src/tests/policy/default.cases"
grep -q "^26 passed, 0 failed$" "$tmp/out" && ok "test count" || bad "test count"
expect_rc 0 "test POLICY CASES" "$bin" test "$policy" "$src/tests/policy/default.cases"
{ cat "$policy"; echo "forbid f-dyn-pub class=dynamic scopes=posts:publish"; } >"$tmp/cand.policy"
expect_rc 1 "test candidate policy" "$bin" test "$tmp/cand.policy" "$src/tests/policy/default.cases"
grep -q "^FAIL .*default.cases:.*expected ALLOW got DENY_POLICY" "$tmp/out" && ok "test names failure" || bad "test names failure"
printf 'policy %s\nexpect ALLOW tool=postly_delete_post class=dynamic scopes=*\n' "$policy" >"$tmp/x.cases"
expect_rc 1 "test failing case" "$bin" test "$tmp/x.cases"
expect_rc 1 "test --json failing case" "$bin" test --json "$tmp/x.cases"
grep -q '"passed":0,"failed":1,"failures":\[{"line":2,"kind":"expect"' "$tmp/out" && ok "test json" || bad "test json"
mkdir -p "$tmp/sub" && cp "$policy" "$tmp/p.policy"
printf 'policy ../p.policy\nexpect ALLOW tool=postly_get_post scopes=posts:read\n' >"$tmp/sub/r.cases"
expect_rc 0 "test relative policy" "$bin" test "$tmp/sub/r.cases"
printf 'expect ALLOW tool=postly_get_post scopes=posts:read\n' >"$tmp/np.cases"
expect_rc 2 "test without a policy" "$bin" test "$tmp/np.cases"
grep -q "no policy" "$tmp/err" && ok "test no policy message" || bad "test no policy message"
printf 'policy %s\nexpect DENY_SCOPE tool=postly_get_post scope=posts:read\n' "$policy" >"$tmp/k.cases"
expect_rc 2 "test unknown key" "$bin" test "$tmp/k.cases"
grep -q "^$tmp/k.cases:2:40: error: unknown key 'scope'" "$tmp/err" && ok "test FILE:LINE:COL" || bad "test FILE:LINE:COL"
printf 'policy missing.policy\n' >"$tmp/m.cases"
expect_rc 2 "test missing policy" "$bin" test "$tmp/m.cases"
expect_rc 0 "summary" "$bin" summary "$policy"

# help and usage: every command the top-level usage lists has --help; every command whose
# output a script reads has --json (compile's table is itself the line format for scripts;
# summary is for people)
cmds=$("$bin" --help | awk '/^  [a-z]/ {print $1}')
[ "$(echo $cmds)" = "scopes compile check explain diff who-can test summary" ] && ok "command list" || bad "command list: $cmds"
for c in $cmds; do
  expect_rc 0 "$c --help" "$bin" "$c" --help
  grep -q "^usage: postly-policy $c" "$tmp/out" && ok "$c usage" || bad "$c usage"
done
for c in scopes check explain diff who-can test; do
  "$bin" "$c" --help | grep -q -- "--json" && ok "$c has --json" || bad "$c has no --json"
done
expect_rc 0 "--help" "$bin" --help
expect_rc 2 "no command" "$bin"
expect_rc 2 "unknown command" "$bin" frob
expect_rc 2 "unknown option" "$bin" compile --frob "$policy"

echo "$fails failed"
[ "$fails" = 0 ]
