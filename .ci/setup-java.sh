#!/usr/bin/env bash
# Builds the Java interop client (tests/java, versions pinned in its pom.xml) with
# Maven Central as the only source and $COHORTD_CACHE/m2 (default ~/.cache/cohortd/m2,
# shared by fresh clones on one machine) as local repository:
# grpc-java code generated from proto/cohortd/v1 (never committed), the OpenFeature
# Java SDK and the flagd provider. Writes tests/java/target/classes and
# target/classpath.txt, which tests/clients_java.rs runs with `java -cp`.
# Idempotent: rebuilds only when the pom, the sources or the protos changed, and
# works offline (-o) once the repository holds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "setup-java: $tool not found; install a JDK 17+ and Maven 3.8+ to run the Java interop test" >&2
    exit 1
  fi
done
stamp=tests/java/target/.build.sha256
want=$(cat .ci/setup-java.sh tests/java/pom.xml proto/cohortd/v1/*.proto \
  $(find tests/java/src -name '*.java' | sort) | sha256sum | cut -d' ' -f1)
if [ -f tests/java/target/classpath.txt ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
goals=(package dependency:build-classpath -Dmdep.outputFile=target/classpath.txt)
m2="${COHORTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cohortd}/m2"
mvn_() { mvn -q -B -f tests/java/pom.xml -Dmaven.repo.local="$m2" "$@"; }
# Offline first (fast, no network when the repository is warm); online to fill it.
if ! mvn_ -o "${goals[@]}" >/dev/null 2>&1; then
  echo "setup-java: resolving from Maven Central into $m2"
  mvn_ "${goals[@]}"
fi
echo "$want" > "$stamp"
