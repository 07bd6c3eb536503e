#!/bin/sh
# Builds a Maven-capable image from this host's JDK, Maven and Debian plugin repository,
# for testing `--maven docker` where nothing can be pulled. Usage: make-maven-image.sh REF
set -eu
ref=$1

# The image is made of the host's Maven and Debian's plugin repository.
need="maven libmaven-clean-plugin-java libmaven-resources-plugin-java libmaven-compiler-plugin-java libsurefire-java libmaven-jar-plugin-java libmaven-install-plugin-java libmaven-dependency-plugin-java libcommons-lang3-java"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends $missing >&2
  else
    echo "missing packages; run: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# A small Java runtime with what Maven and javac need.
jlink --output "$root/opt/jdk" --no-header-files --no-man-pages --strip-debug \
  --add-modules java.base,java.compiler,jdk.compiler,java.xml,java.naming,java.management,java.logging,java.desktop,java.sql,jdk.unsupported,java.scripting,jdk.zipfs,java.instrument,java.security.jgss,java.net.http,jdk.crypto.ec

mkdir -p "$root/usr/share" "$root/bin" "$root/usr/bin" "$root/tmp"
chmod 1777 "$root/tmp"
cp -a /usr/share/java /usr/share/maven /usr/share/maven-repo "$root/usr/share/"
mkdir -p "$root/etc"
cp -a /etc/maven "$root/etc/"
cp /bin/dash "$root/bin/sh"

# The shared libraries the JDK and the shell load.
for f in /bin/dash "$root/opt/jdk/bin/java" $(find "$root/opt/jdk" -name '*.so'); do
  ldd "$f" 2>/dev/null | awk '/=>/ { print $3 } /^\t\// { print $1 }'
done | sort -u | while read -r lib; do
  [ -n "$lib" ] && [ -e "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat > "$root/usr/bin/mvn" <<'MVN'
#!/bin/sh
exec /opt/jdk/bin/java -classpath /usr/share/maven/boot/plexus-classworlds-2.x.jar \
  -Dclassworlds.conf=/usr/share/maven/bin/m2.conf -Dmaven.home=/usr/share/maven \
  -Dmaven.multiModuleProjectDirectory="$PWD" \
  org.codehaus.plexus.classworlds.launcher.Launcher "$@"
MVN
chmod 755 "$root/usr/bin/mvn"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/bin:/bin:/opt/jdk/bin' \
  --change 'ENV JAVA_HOME=/opt/jdk' - "$ref" >/dev/null
