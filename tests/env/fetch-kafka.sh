#!/usr/bin/env bash
# Collects the Apache Kafka $KAFKA_VERSION broker classpath from Maven Central into
# $CRONLANE_CACHE/kafka-$KAFKA_VERSION/libs. A no-op when cached.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$CRONLANE_CACHE/kafka-$KAFKA_VERSION"
[[ -f "$out/libs/.complete" ]] && exit 0
mkdir -p "$out/libs"
work=$(mktemp -d "$CRONLANE_CACHE/kafka-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# kafka_2.13 3.9 ships no logging backend in its POM: add reload4j.
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cronlane</groupId><artifactId>kafka-classpath</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$KAFKA_SCALA</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
run_logged "download Kafka $KAFKA_VERSION jars from Maven Central (first run only)" "$out/fetch.log" \
  mvn -B -q -f "$work/pom.xml" -Dmaven.repo.local="$CRONLANE_CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$out/libs"
ls "$out/libs"/kafka_"$KAFKA_SCALA"-"$KAFKA_VERSION".jar >/dev/null || die "kafka jar missing after fetch"
touch "$out/libs/.complete"
