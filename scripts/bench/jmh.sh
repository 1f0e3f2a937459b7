#!/usr/bin/env bash
# JMH micro-benchmarks of the benchmarks module (benchmarks/README.md): compiles the module with
# the reactor (no install; Maven downloads JMH on the first run, MVN_OFFLINE=-o keeps it offline;
# the annotation processor writes META-INF/BenchmarkList into
# target/classes) and runs JMH's runner on that class path. Arguments go to JMH, e.g.
#   scripts/bench/jmh.sh LinearBenchmark -p weight=frozen
#   scripts/bench/jmh.sh -l            (list benchmarks)
set -euo pipefail
cd "$(dirname "$0")/../.."
mvn -B -q ${MVN_OFFLINE:-} compile -pl benchmarks -am
exec java -cp "benchmarks/target/classes:$(cat benchmarks/target/classpath.txt)" org.openjdk.jmh.Main "$@"
