//! VolumeRestrictions (basics): the same read-write disk (GCE PD, AWS EBS, iSCSI, RBD)
//! cannot be mounted by two pods on one node.

use k8s_openapi::api::core::v1::Volume;

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Status};

pub const NAME: &str = "VolumeRestrictions";
pub const REASON: &str = "node(s) had no available disk";

fn volumes(p: &PodInfo) -> &[Volume] {
    p.pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[])
}

fn conflict(a: &Volume, b: &Volume) -> bool {
    if let (Some(x), Some(y)) = (&a.gce_persistent_disk, &b.gce_persistent_disk) {
        if x.pd_name == y.pd_name && !(x.read_only == Some(true) && y.read_only == Some(true)) {
            return true;
        }
    }
    if let (Some(x), Some(y)) = (&a.aws_elastic_block_store, &b.aws_elastic_block_store) {
        if x.volume_id == y.volume_id {
            return true;
        }
    }
    if let (Some(x), Some(y)) = (&a.iscsi, &b.iscsi) {
        if x.iqn == y.iqn && !(x.read_only == Some(true) && y.read_only == Some(true)) {
            return true;
        }
    }
    if let (Some(x), Some(y)) = (&a.rbd, &b.rbd) {
        let overlap = x.monitors.iter().any(|m| y.monitors.contains(m));
        if overlap
            && x.pool == y.pool
            && x.image == y.image
            && !(x.read_only == Some(true) && y.read_only == Some(true))
        {
            return true;
        }
    }
    false
}

fn relevant(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some()
        || v.aws_elastic_block_store.is_some()
        || v.iscsi.is_some()
        || v.rbd.is_some()
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let mine: Vec<&Volume> = volumes(pod).iter().filter(|v| relevant(v)).collect();
    if mine.is_empty() {
        return Ok(());
    }
    for other in &node.pods {
        for v in volumes(other) {
            if mine.iter().any(|m| conflict(m, v)) {
                return Err(Status::new(Code::Unschedulable, NAME, REASON));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    #[test]
    fn same_disk_twice() {
        let disk = |name: &str, ro: bool| {
            pod(
                name,
                json!({"volumes": [{"name": "d", "gcePersistentDisk": {"pdName": "disk-1", "readOnly": ro}}]}),
            )
        };
        let mut n = node("a", json!({}), "1", "1Gi");
        n.add_pod(disk("x", true));
        assert!(filter(&disk("p", true), &n).is_ok());
        let e = filter(&disk("p", false), &n).unwrap_err();
        assert_eq!(e.reasons[0], REASON);
        let ebs = |name: &str| {
            pod(
                name,
                json!({"volumes": [{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]}),
            )
        };
        n.add_pod(ebs("y"));
        assert!(filter(&ebs("q"), &n).is_err());
    }
}
