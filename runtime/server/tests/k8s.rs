//! The pods of the Kubernetes manifests, run here as the overlays render them. `tools/kustomize-check` renders
//! `k8s/overlays/*` with kustomize's own library (built by `tools/kustomize-check/build.sh`: a cache hit when
//! nothing changed); each test takes a pod's exact command line and environment from that output and runs the
//! binary with them against Apache Kafka and SecantusDB on loopback. Only what a cluster provides differs: the
//! Services of Kafka and MongoDB become the loopback servers (and the replica set's name SecantusDB's), a listen
//! address `0.0.0.0:PORT` a free loopback port, an optional variable from a Secret that does not exist stays unset,
//! and each volume is a temporary directory: a ConfigMap laid out as kubelet mounts it (a timestamped folder and the
//! `..data` link), a persistent volume claim shared by every pod that names it.
//!
//! So the flags and variables in the manifests are the ones that work: every pipeline pod reaches ready (`/readyz`
//! 200), the ingest pod's events reach MongoDB and a processor of the same consumer group stores its share, the lake
//! appender writes hour files, a new version of the scripts ConfigMap (kubelet's `..data` swap) is live in every
//! pipeline pod without a restart, and the embedded overlay's history job runs beside its pod.
//!
//! The distributed test is the only user of this process's Kafka and SecantusDB, so it keeps the manifests' own
//! topics, consumer groups and database name.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use forgecast_core::store::Store;
use forgecast_mongo::MongoStore;
use forgecast_testkit::{Service, shared_kafka, shared_mongo};
use serde_json::Value;
use support::{Up, spawn_logged};

/// How long a pod may take to answer `/readyz` with 200.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The renderer, built (or found up to date) once per test process.
fn renderer() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let built = Command::new(root().join("tools/kustomize-check/build.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("tools/kustomize-check/build.sh runs");
        assert!(
            built.status.success(),
            "tools/kustomize-check/build.sh failed: rendering the manifests needs Go and its modules (the Go \
             module proxy, or a warm $HOME/.cache/forgecast/go)"
        );
        PathBuf::from(String::from_utf8(built.stdout).unwrap().trim())
    })
}

/// One overlay's objects, as `kubectl kustomize --load-restrictor LoadRestrictionsNone` renders them.
struct Manifests {
    overlay: String,
    objects: Vec<Value>,
}

impl Manifests {
    fn render(overlay: &str) -> Manifests {
        let dir = root().join("k8s/overlays").join(overlay);
        let out = Command::new(renderer())
            .arg("json")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not render: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Manifests {
            overlay: overlay.to_string(),
            objects: serde_json::from_slice(&out.stdout).unwrap(),
        }
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the {} overlay has no {kind}/{name}", self.overlay))
    }

    /// The pod spec of a workload (a Deployment's template, a CronJob's job template, ...).
    fn pod(&self, kind: &str, name: &str) -> &Value {
        let spec = &self.get(kind, name)["spec"];
        match kind {
            "CronJob" => &spec["jobTemplate"]["spec"]["template"]["spec"],
            _ => &spec["template"]["spec"],
        }
    }

    /// `name:port` of a Service's port, as the pods name it.
    fn service_address(&self, name: &str, port: &str) -> String {
        let ports = self.get("Service", name)["spec"]["ports"]
            .as_array()
            .unwrap();
        let port = ports
            .iter()
            .find(|p| p["name"] == port)
            .unwrap_or_else(|| panic!("Service/{name} has no port {port}"));
        format!("{name}:{}", port["port"])
    }
}

/// What stands in for the cluster: the servers behind the Services, and a directory per persistent volume claim.
struct Cluster {
    /// (what the manifests say, what it is here), applied to every argument and variable.
    replacements: Vec<(String, String)>,
    /// SecantusDB's replica set, for `replicaSet=` in MongoDB URIs.
    replica_set: Option<String>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Kafka and MongoDB (when given) on loopback in place of the overlay's `kafka` and `mongo` Services.
    fn new(
        manifests: &Manifests,
        kafka: Option<&'static Service>,
        mongo: Option<&'static Service>,
    ) -> Cluster {
        let mut replacements = Vec::new();
        let mut replica_set = None;
        if let Some(kafka) = kafka {
            replacements.push((
                manifests.service_address("kafka", "client"),
                kafka.brokers(),
            ));
        }
        if let Some(mongo) = mongo {
            replacements.push((
                format!("mongodb://{}", manifests.service_address("mongo", "mongo")),
                format!("mongodb://127.0.0.1:{}", mongo.port()),
            ));
            let uri = mongo.mongo_uri();
            let set = uri.split("replicaSet=").nth(1).unwrap();
            replica_set = Some(set.split('&').next().unwrap().to_string());
        }
        Cluster {
            replacements,
            replica_set,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The directory of a persistent volume claim, the same for every pod.
    fn claim(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("claims").join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A value of the manifests as it is here.
    fn loopback(&self, value: &str) -> String {
        let mut value = value.to_string();
        for (from, to) in &self.replacements {
            value = value.replace(from, to);
        }
        if let (Some(set), Some(at)) = (&self.replica_set, value.find("replicaSet=")) {
            let start = at + "replicaSet=".len();
            let end = value[start..].find('&').map_or(value.len(), |e| start + e);
            value.replace_range(start..end, set);
        }
        // A pod listens on all its addresses at a fixed port; here, loopback at a free one.
        if let Some(port) = value.strip_prefix("0.0.0.0:")
            && port.parse::<u16>().is_ok()
        {
            value = "127.0.0.1:0".into();
        }
        value
    }
}

/// A ConfigMap volume written the way kubelet writes it: the files in a timestamped folder, `..data` linking to it,
/// and one link per top-level entry through `..data`. A new version is a new folder and `..data` swapped to it.
struct ConfigMapVolume {
    dir: PathBuf,
    /// (key, path) of the volume's items; every key at its own name when it has none.
    items: Vec<(String, String)>,
    version: u32,
}

impl ConfigMapVolume {
    fn mount(dir: PathBuf, volume: &Value, data: &BTreeMap<String, String>) -> ConfigMapVolume {
        let items = match volume["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|i| {
                    (
                        i["key"].as_str().unwrap().to_string(),
                        i["path"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
            None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
        };
        fs::create_dir_all(&dir).unwrap();
        let mut mounted = ConfigMapVolume {
            dir,
            items,
            version: 0,
        };
        mounted.write(data);
        let mut entries: Vec<&str> = mounted
            .items
            .iter()
            .map(|(_, path)| path.split('/').next().unwrap())
            .collect();
        entries.sort_unstable();
        entries.dedup();
        for entry in entries {
            let link = mounted.dir.join(entry);
            if !link.exists() {
                std::os::unix::fs::symlink(Path::new("..data").join(entry), link).unwrap();
            }
        }
        mounted
    }

    /// Writes `data` as the next version and points `..data` at it, replacing the link in one rename.
    fn write(&mut self, data: &BTreeMap<String, String>) {
        self.version += 1;
        let stamp = format!("..2026_01_01_00_00_{:02}.000000001", self.version);
        for (key, path) in &self.items {
            let file = self.dir.join(&stamp).join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            let content = data
                .get(key)
                .unwrap_or_else(|| panic!("the ConfigMap has no key {key}"));
            fs::write(file, content).unwrap();
        }
        let next = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &next).unwrap();
        fs::rename(&next, self.dir.join("..data")).unwrap();
        if self.version > 1 {
            let old = format!("..2026_01_01_00_00_{:02}.000000001", self.version - 1);
            fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// One container of a pod, ready to run here.
struct Pod {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The ConfigMap volumes, by ConfigMap name.
    configmaps: Vec<(String, ConfigMapVolume)>,
    /// Mount path in the pod -> directory here.
    mounts: Vec<(String, PathBuf)>,
}

impl Pod {
    /// The container `container` of the workload `kind/name`, its volumes laid out under the cluster's directory.
    fn new(
        manifests: &Manifests,
        cluster: &Cluster,
        kind: &str,
        name: &str,
        container: &str,
    ) -> Pod {
        let spec = manifests.pod(kind, name);
        let c = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .unwrap_or_else(|| panic!("{kind}/{name} has no container {container}"));
        assert!(
            c["command"].is_null(),
            "{kind}/{name} should run the image's entrypoint (forgecast)"
        );
        let volumes_dir = cluster.dir.path().join("pods").join(name);
        let mut configmaps = Vec::new();
        let mut volumes = BTreeMap::new();
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let volume_name = volume["name"].as_str().unwrap();
            let dir = if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
                cluster.claim(claim)
            } else if let Some(configmap) = volume["configMap"]["name"].as_str() {
                let dir = volumes_dir.join(volume_name);
                let data = configmap_data(manifests, configmap);
                let mounted = ConfigMapVolume::mount(dir.clone(), &volume["configMap"], &data);
                configmaps.push((configmap.to_string(), mounted));
                dir
            } else if volume["emptyDir"].is_object() {
                let dir = volumes_dir.join(volume_name);
                fs::create_dir_all(&dir).unwrap();
                dir
            } else {
                panic!(
                    "{kind}/{name}: volume {volume_name} is of a kind this test does not lay out"
                );
            };
            volumes.insert(volume_name.to_string(), dir);
        }
        let mut mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let volume = m["name"].as_str().unwrap();
                (
                    m["mountPath"].as_str().unwrap().to_string(),
                    volumes
                        .get(volume)
                        .unwrap_or_else(|| panic!("{kind}/{name} mounts {volume}, which it lacks"))
                        .clone(),
                )
            })
            .collect();
        // The longest mount path first, so that a path under two mounts takes the inner one.
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        let mut pod = Pod {
            name: name.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            configmaps,
            mounts,
        };
        pod.args = strings(&c["args"])
            .iter()
            .map(|a| pod.here(cluster, a))
            .collect();
        for variable in c["env"].as_array().into_iter().flatten() {
            let variable_name = variable["name"].as_str().unwrap().to_string();
            if let Some(value) = variable["value"].as_str() {
                let value = pod.here(cluster, value);
                pod.env.push((variable_name, value));
            } else if variable["valueFrom"]["secretKeyRef"]["optional"] == true {
                // No Secret here, as on a cluster where none was made: kubelet leaves the variable unset.
            } else {
                panic!(
                    "{kind}/{name}: {variable_name} comes from where this test cannot follow: {variable}"
                );
            }
        }
        pod
    }

    /// A value of the manifests as it is here: the cluster's servers, and paths under a mount in its directory.
    fn here(&self, cluster: &Cluster, value: &str) -> String {
        let value = cluster.loopback(value);
        for (path, dir) in &self.mounts {
            if value == *path {
                return dir.display().to_string();
            }
            if let Some(rest) = value.strip_prefix(&format!("{path}/")) {
                return dir.join(rest).display().to_string();
            }
        }
        value
    }

    /// The variable's value here.
    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} does not set {name}", self.name))
    }

    /// Runs the container's command line with its environment and nothing else.
    fn spawn(&self) -> Up {
        let (child, log, all) = spawn_logged(
            Command::new(env!("CARGO_BIN_EXE_forgecast"))
                .args(&self.args)
                .env_clear()
                .envs(self.env.iter().map(|(k, v)| (k, v))),
        );
        Up {
            child,
            url: String::new(),
            log,
            all,
        }
    }

    /// Starts `forgecast up` as the pod does; returns once it serves HTTP.
    fn start(&self) -> Up {
        let mut up = self.spawn();
        let line = wait_for_message(&up, &self.name, |m| m.starts_with("Serving http://"));
        up.url = line["message"].as_str().unwrap()["Serving ".len()..]
            .trim_end_matches('/')
            .to_string();
        up
    }

    /// Writes a new version of a ConfigMap into the pod's volume, as kubelet does when the ConfigMap changes.
    fn update_configmap(&mut self, name: &str, data: &BTreeMap<String, String>) {
        let (_, volume) = self
            .configmaps
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("the pod does not mount ConfigMap {name}"));
        volume.write(data);
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn configmap_data(manifests: &Manifests, name: &str) -> BTreeMap<String, String> {
    serde_json::from_value(manifests.get("ConfigMap", name)["data"].clone()).unwrap()
}

/// Waits (a minute at most) for a JSON log line whose message satisfies `matches`; returns it.
fn wait_for_message(up: &Up, pod: &str, matches: impl Fn(&str) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = up.log.recv_timeout(left) else {
            panic!(
                "{pod}: the awaited log line did not come; its log:\n{}",
                up.all.lock().unwrap()
            );
        };
        // FORGECAST_LOG_FORMAT=json: every line is JSON but an error that stops the process at start.
        let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!("{pod} failed: {line}; its log:\n{}", up.all.lock().unwrap())
        });
        if parsed["message"].as_str().is_some_and(&matches) {
            return parsed;
        }
    }
}

/// Waits until `GET /readyz` answers 200, as the readiness probe.
async fn wait_ready(up: &mut Up, pod: &str) {
    let started = Instant::now();
    loop {
        let status = forgecast_github::http::client()
            .get(format!("{}/readyz", up.url))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        if status == Some(200) {
            return;
        }
        assert!(
            up.child.try_wait().unwrap().is_none(),
            "{pod} exited; its log:\n{}",
            up.all.lock().unwrap()
        );
        assert!(
            started.elapsed() < READY_WITHIN,
            "{pod} is not ready after {READY_WITHIN:?} (last answer {status:?}); its log:\n{}",
            up.all.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The sum of a counter's series in a process's `/metrics`.
async fn counter(up: &Up, name: &str) -> f64 {
    let text = forgecast_github::http::client()
        .get(format!("{}/metrics", up.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `done` holds, `limit` at most; panics with `what` and the logs of `pods` otherwise.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    pods: &[&Up],
    mut done: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !done().await {
        if started.elapsed() > limit {
            let logs: Vec<String> = pods.iter().map(|p| p.all.lock().unwrap().clone()).collect();
            panic!(
                "{what} did not happen within {limit:?}; logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The lines of the hour files under `lake` (`YYYY/MM/DD/HH.json`).
fn lake_lines(lake: &Path) -> usize {
    let mut lines = 0;
    let mut pending = vec![lake.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                lines += fs::read_to_string(&path).unwrap().lines().count();
            }
        }
    }
    lines
}

/// The scripts ConfigMap with a change to `routing.rhai` that an analyst might push: a new comment line.
fn edited_scripts(manifests: &Manifests) -> BTreeMap<String, String> {
    let mut data = configmap_data(manifests, "forgecast-scripts");
    let routing = data
        .get_mut("routing.rhai")
        .expect("the scripts ConfigMap has routing.rhai");
    routing.push_str("\n// Edited in the ConfigMap while the pods run.\n");
    data
}

/// Waits for the log line saying that the new `routing.rhai` is live.
fn wait_for_reload(up: &Up, pod: &str) {
    let line = wait_for_message(up, pod, |m| {
        m.starts_with("Script reloaded") || m.starts_with("Script refused")
    });
    assert_eq!(
        line["message"], "Script reloaded; the new version is live.",
        "{pod}: {line}"
    );
    assert!(
        line["script"].as_str().unwrap().contains("routing"),
        "{pod}: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_pipeline_pods_run_as_rendered() {
    let manifests = Manifests::render("distributed");
    let cluster = Cluster::new(&manifests, Some(shared_kafka()), Some(shared_mongo()));
    let mut ingest = Pod::new(
        &manifests,
        &cluster,
        "Deployment",
        "forgecast-ingest",
        "forgecast",
    );
    let mut process = Pod::new(
        &manifests,
        &cluster,
        "Deployment",
        "forgecast-process",
        "forgecast",
    );
    let archive = Pod::new(
        &manifests,
        &cluster,
        "Deployment",
        "forgecast-archive",
        "archive",
    );
    assert_eq!(
        ingest.var("FORGECAST_SOURCE"),
        "replay",
        "the manifests default to the replay"
    );
    assert_eq!(process.var("FORGECAST_SOURCE"), "none");
    assert_eq!(
        ingest.var("FORGECAST_KAFKA_GROUP"),
        process.var("FORGECAST_KAFKA_GROUP"),
        "the pipeline pods are one consumer group"
    );

    // As on a cluster, the pods start together (each trains the default model if the store has none yet: the
    // trainer's lease is issue 15).
    let mut ingested = ingest.start();
    let mut processor = process.start();
    let archiver = archive.spawn();
    wait_ready(&mut ingested, "forgecast-ingest").await;
    wait_ready(&mut processor, "forgecast-process").await;

    let store = MongoStore::connect(
        &cluster.loopback(ingest.var("FORGECAST_MONGO_URI")),
        ingest.var("FORGECAST_MONGO_DB"),
    )
    .await
    .unwrap();
    let pods = [&ingested, &processor, &archiver];
    let (store, processor_ref) = (&store, &processor);
    eventually(
        "the replayed events reaching MongoDB",
        Duration::from_secs(90),
        &pods,
        || async move { store.event_count().await.unwrap_or(0) > 0 },
    )
    .await;
    eventually(
        "forgecast-process storing its share of the partitions",
        Duration::from_secs(90),
        &pods,
        || async move { counter(processor_ref, "forgecast_events_out_total").await > 0.0 },
    )
    .await;
    let lake = PathBuf::from(archive.var("FORGECAST_LAKE"));
    let lake = &lake;
    eventually(
        "forgecast-archive appending to the lake",
        Duration::from_secs(90),
        &pods,
        || async move { lake_lines(lake) > 0 },
    )
    .await;

    // An analyst applies an edited script: kubelet swaps each pipeline pod's volume, and each reloads it.
    let edited = edited_scripts(&manifests);
    ingest.update_configmap("forgecast-scripts", &edited);
    process.update_configmap("forgecast-scripts", &edited);
    wait_for_reload(&ingested, "forgecast-ingest");
    wait_for_reload(&processor, "forgecast-process");
    assert!(
        ingested.child.try_wait().unwrap().is_none()
            && processor.child.try_wait().unwrap().is_none(),
        "a reload restarted nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_pod_and_history_job_run_as_rendered() {
    let manifests = Manifests::render("embedded");
    let cluster = Cluster::new(&manifests, None, None);
    let mut pod = Pod::new(&manifests, &cluster, "Deployment", "forgecast", "forgecast");
    let mut up = pod.start();
    wait_ready(&mut up, "forgecast").await;
    let serving = &up;
    eventually(
        "the replayed events being stored",
        Duration::from_secs(60),
        &[serving],
        || async move { counter(serving, "forgecast_store_events_stored_total").await > 0.0 },
    )
    .await;

    // The nightly history job, on the pod's volume while the pod runs.
    let job = Pod::new(
        &manifests,
        &cluster,
        "CronJob",
        "forgecast-history",
        "aggregate",
    );
    let mut history = job.spawn();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = history.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the history job did not finish; its log:\n{}",
            history.all.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status.success(),
        "the history job failed; its log:\n{}",
        history.all.lock().unwrap()
    );
    let rows = PathBuf::from(job.var("FORGECAST_DATA_DIR")).join("history/embedded.jsonl");
    assert!(
        fs::read_to_string(&rows).is_ok_and(|r| r.lines().count() > 0),
        "the history job wrote no rows to {}",
        rows.display()
    );

    let edited = edited_scripts(&manifests);
    pod.update_configmap("forgecast-scripts", &edited);
    wait_for_reload(&up, "forgecast");
}
