#!/usr/bin/env bash
# The peft4j comparison harness (benchmarks/README.md): compiles the benchmarks module with the
# reactor (no install) and runs org.peft4j.benchmarks.Compare from the repository root.
# Options are passed through (e.g. --rounds 5 --threads 2); --help lists them.
# Maven downloads what is missing (JMH, onnxruntime) on the first run; MVN_OFFLINE=-o keeps it offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
mvn -B -q ${MVN_OFFLINE:-} compile -pl benchmarks -am
exec java -Xmx2g -XX:+UseParallelGC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "benchmarks/target/classes:$(cat benchmarks/target/classpath.txt)" org.peft4j.benchmarks.Compare "$@"
