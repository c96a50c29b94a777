#!/usr/bin/env bash
# Writes matcher/data/given_names.txt: every first name registered for at
# least 3 births in England and Wales, 1996–2018 (ONS, as collected in the
# sdglinkage data set; see matcher/data/NOTICE), lower-cased and sorted, one
# a line. The matcher uses it to tell a typo (not a name) from a different
# real name (a sibling's) when a caller's given name is one edit from a plan
# holder's.
#
#   scripts/gen-given-names.sh [DATA_DIR]   # default ../shared/data/ref/sdglinkage
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-../shared/data/ref/sdglinkage}"
for f in boyname1996to2018EW.csv girlname1996to2018EW.csv; do
	[[ -r "$src/$f" ]] || { echo "gen-given-names: $src/$f not readable" >&2; exit 1; }
done
# Rows: year,FIRSTNAME,"1,234" (the count quoted, with thousands separators).
awk -F, 'FNR > 1 { name = tolower($2); count = $3; if (index($0, "\"")) { count = substr($0, index($0, "\"")); gsub(/[",]/, "", count) }; total[name] += count }
	END { for (n in total) if (total[n] >= 3 && n ~ /^[a-z]+$/) print n }' \
	"$src/boyname1996to2018EW.csv" "$src/girlname1996to2018EW.csv" | LC_ALL=C sort > matcher/data/given_names.txt
echo "gen-given-names: $(wc -l < matcher/data/given_names.txt) names" >&2
