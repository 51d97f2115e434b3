#!/usr/bin/env bash
# Reproduces, with any crosswalk binary, the defects hostile inputs found (issue #20) that a
# shell can provoke, and prints one line per defect: "fixed" or "PRESENT". Run from the
# repository root:   tests/scripts/issue20_defects.sh target/release/crosswalk
# (The ones a shell cannot provoke, a kill between two renames, an alias CLK of another width,
# -j 100000, are covered by tests/link.rs and tests/cli_errors.rs.)
set -u
X=$(realpath "${1:?usage: issue20_defects.sh CROSSWALK_BINARY}")
H=$(pwd)/fixtures/hostile
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
cp "$H/../encoder/test.key" k && chmod 600 k
enc() { "$X" encode --source "$H/mapping.toml" --key-file k --reference-date 2026-11-22 "$@"; }
say() { if [ "$2" = 0 ]; then echo "fixed    $1"; else echo "PRESENT  $1"; fi; }

head -n 21 "$H/good.csv" > a.csv; { head -n 1 "$H/good.csv"; tail -n 20 "$H/good.csv"; } > b.csv
enc --input a.csv --out a.parquet 2>/dev/null; enc --input b.csv --out b.parquet 2>/dev/null

# 1. A registry without CURRENT: the next run must refuse and delete nothing.
"$X" link --registry reg --label m1 a.parquet >/dev/null 2>&1; rm -f reg/CURRENT
"$X" link --registry reg --label m2 b.parquet >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ] && [ -d reg/generations/gen-000001 ]; say "1 registry without CURRENT refused, nothing deleted" $?

# 2. A directory that is not a registry: its files must survive.
mkdir -p other/batches && echo mine > other/notes.txt && echo mine > other/batches/keep.parquet
"$X" link --registry other --label m1 a.parquet >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ] && [ -f other/batches/keep.parquet ]; say "2 foreign directory refused, its files kept" $?

# 3. One unbalanced quote must not swallow the following rows and report success.
enc --input "$H/unbalanced_quote.csv" --out q.parquet >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ]; say "3 unbalanced quote stops the run" $?

# 4. Files of two runs mixed by hand: report must refuse.
"$X" link --out r1 a.parquet >/dev/null 2>&1; "$X" link --out r2 a.parquet b.parquet >/dev/null 2>&1
cp r2/entities.parquet r1/entities.parquet
"$X" report r1 >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ]; say "4 report refuses a run directory with another run's entities" $?

# 5. A code column pointed at birth dates: no date in the message.
"$X" encode --source "$H/dob_as_code.toml" --key-file k --input "$H/good.csv" --out d.parquet 2> d.err >/dev/null
grep -Eq '(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}' d.err; [ $? != 0 ]; say "5 unknown-code message quotes no birth date" $?

# 6. A headerless export: no "did you mean" from its first row.
printf 'agency = "t"\nagency_type = "other"\ndefault_stage = "identification"\n[columns]\nrecord_id = "id"\ngiven_name = "first"\ndob = { column = "DOB", formats = ["YYYY-MM-DD"] }\n' > h.toml
printf '1,Bob,2001-01-01\n2,Ana,2002-02-02\n' > h.csv
"$X" encode --source h.toml --key-file k --input h.csv --out h.parquet 2> h.err >/dev/null
grep -q 'Bob' h.err; [ $? != 0 ]; say "6 no suggestion quotes a headerless file's first row" $?

# 9. Non-Latin and punctuation-only names: a rejects line, not silence.
enc --input "$H/scripts_and_marks.csv" --out s.parquet >/dev/null 2>&1
n=$(grep -c 'family_name\|given_name' s.rejects.csv 2>/dev/null || true)
[ "${n:-0}" -ge 2 ]; say "9 non-Latin / punctuation names get a rejects line" $?

# 10. The same file twice: refused.
"$X" link --out r3 a.parquet a.parquet >/dev/null 2>&1; rc=$?
[ "$rc" != 0 ]; say "10 the same encodings file twice refused" $?

# 11. CRLF lines, stdin, a mapping that is not UTF-8, a directory to link, a key directory,
#     --withdraw plus adding the same batch.
enc --input "$H/crlf.csv" --out c.parquet >/dev/null 2>&1
printf 'client_id,first_name,last_name,birth_date,phone,event\r\n1,Ana,Lopez,2001-02-30,,INTAKE\r\n' > c2.csv
enc --input c2.csv --out c2.parquet >/dev/null 2>&1
grep -q '^1,2,dob' c2.rejects.csv; say "11a CRLF export: rejects line numbers right" $?
cat "$H/good.csv" | enc --input /dev/stdin --out p.parquet >/dev/null 2>&1; say "11b --input /dev/stdin (a pipe) is read" $?
printf '\xe9' | cat "$H/mapping.toml" - > m1252.toml
"$X" encode --source m1252.toml --key-file k --input "$H/good.csv" --out m.parquet 2> m.err >/dev/null; rc=$?
[ "$rc" = 3 ] && grep -q 'byte' m.err; say "11c mapping not UTF-8: exit 3 with a position" $?
"$X" link --out r4 "$W" >/dev/null 2>&1; rc=$?
[ "$rc" = 1 ]; say "11d a directory given to link: exit 1" $?
mkdir -p keydir && chmod 755 keydir
"$X" encode --source "$H/mapping.toml" --key-file keydir --input "$H/good.csv" --out kd.parquet 2> kd.err >/dev/null
grep -q 'not a regular file' kd.err; say "11e key directory: 'not a regular file'" $?
"$X" link --registry reg2 --label m1 a.parquet >/dev/null 2>&1
"$X" link --registry reg2 --label m2 --withdraw a.parquet a.parquet >/dev/null 2> w.err; rc=$?
[ "$rc" != 0 ]; say "11f --withdraw X plus adding X refused" $?
