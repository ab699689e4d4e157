//! docker-py (python3-docker) smoke test of issue 12's points 1-3: the same script runs
//! against berthd and a private dockerd (when installed) and must print the same lines.

mod common;
use common::sdk::{docker_py_available, dockerd_with_busybox, run_docker_py};
use common::Daemon;

const SCRIPT: &str = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1], version='1.41')
out = []
def status(f):
    try:
        f()
        return 'ok'
    except docker.errors.APIError as e:
        return '%d %s' % (e.status_code, e.explanation)
    except docker.errors.ImageLoadError as e:
        return 'load error'
out.append('plugins %r' % c.plugins.list())
out.append('services ' + status(lambda: c.services.list())[:3])
out.append('swarm leave ' + status(lambda: c.swarm.leave()))
out.append('nodes ' + status(lambda: c.nodes.list())[:3])
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet='10.232.5.0/24')])
n = c.networks.create('pynet', driver='bridge', ipam=ipam, labels=None, options=None)
out.append('network %s' % n.attrs['IPAM']['Config'][0]['Subnet'])
v = c.volumes.create('pyvol', driver_opts=None, labels=None)
out.append('volume %s' % v.attrs['Driver'])
top = c.containers.run('busybox', ['sleep', '300'], name='pytop', detach=True)
child = c.containers.run('busybox', ['sleep', '300'], name='pychild', detach=True, links={'pytop': 'db'})
c.api.remove_container('pychild/db', link=True)
child.reload()
out.append('links %r' % child.attrs['HostConfig']['Links'])
r = top.exec_run(['sh', '-c', 'echo hi; exit 4'])
out.append('exec %d %r' % (r.exit_code, r.output))
hc = {'Test': ['CMD', 'true'], 'Interval': 100}
out.append('healthcheck ' + status(lambda: c.containers.create('busybox', healthcheck=hc)))
out.append('env ' + status(lambda: c.containers.create('busybox', environment=['=x'])))
out.append('link ' + status(lambda: c.containers.create('busybox', links={'nosuch': 'db'})))
out.append('tag ' + status(lambda: c.images.get('busybox').tag('sha256', 'x')))
out.append('load ' + status(lambda: c.images.load(b'not a tar')))
for x in (child, top):
    x.remove(force=True)
n.remove()
v.remove()
print('\n'.join(out))
"#;

fn run(host: &str) -> String {
    run_docker_py(SCRIPT, &[host])
}

#[test]
fn docker_py_sees_dockerd() {
    if !docker_py_available() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let berth = run(&d.host());
    for want in [
        "plugins []",
        "services 503",
        "swarm leave 503 This node is not part of a swarm",
        "network 10.232.5.0/24",
        "volume local",
        "links None",
        "exec 4 b'hi\\n'",
        "healthcheck 400 Interval in Healthcheck cannot be less than 1ms",
        "env 400 invalid environment variable: =x",
        "link 400 could not get container for nosuch: No such container: nosuch",
        "tag 400 refusing to create an ambiguous tag using digest algorithm as name",
        "load load error",
    ] {
        assert!(
            berth.lines().any(|l| l == want),
            "{want:?} not in:\n{berth}"
        );
    }
    if let Some(dk) = dockerd_with_busybox(&d) {
        let docker = run(&format!("unix://{}", dk.root.join("d.sock").display()));
        assert_eq!(berth, docker, "berthd and dockerd differ");
    }
}
