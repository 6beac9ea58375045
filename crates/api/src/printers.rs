//! Server-side printing: the `meta.k8s.io/v1` Table columns and cells kube-apiserver
//! returns for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Mirrors upstream's default printers (`pkg/printers/internalversion`): the server always
//! prints the "wide" form; kubectl hides `priority: 1` columns unless `-o wide`. Resources
//! without an upstream printer get the default table convertor's `Name` + `Created At`.
//! Objects are raw JSON in their served version; absent fields read as Go zero values.

use serde::Serialize;
use serde_json::{json, Value};

use crate::registry::Resource;

/// One `TableColumnDefinition`, serialised in upstream's field order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    /// "string" | "integer" | "number" | "boolean" | "date".
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// "name" for the object-name column, otherwise "".
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: shown by `kubectl get -o wide`.
    pub priority: i32,
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);
const CONTAINERS: Column = wide("Containers", "string", CONTAINERS_DESC);
const IMAGES: Column = wide("Images", "string", IMAGES_DESC);
const SELECTOR: Column = wide(
    "Selector",
    "string",
    "A label query over pods that should match the replica count.",
);

/// Which printer a resource uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Printer {
    Pod,
    PodTemplate,
    PodDisruptionBudget,
    ReplicationController,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    ComponentStatus,
    Deployment,
    HorizontalPodAutoscaler,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    CertificateSigningRequest,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    RuntimeClass,
    VolumeAttachment,
    EndpointSlice,
    CsiNode,
    CsiDriver,
    CsiStorageCapacity,
    Webhook,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    FlowSchema,
    PriorityLevelConfiguration,
    ApiService,
    /// The generic table convertor: Name, Created At.
    Default,
}

fn printer(res: &Resource) -> Printer {
    use Printer::*;
    match (res.group, res.plural) {
        ("", "pods") => Pod,
        ("", "podtemplates") => PodTemplate,
        ("policy", "poddisruptionbudgets") => PodDisruptionBudget,
        ("", "replicationcontrollers") => ReplicationController,
        ("apps", "replicasets") => ReplicaSet,
        ("apps", "daemonsets") => DaemonSet,
        ("batch", "jobs") => Job,
        ("batch", "cronjobs") => CronJob,
        ("", "services") => Service,
        ("networking.k8s.io", "ingresses") => Ingress,
        ("networking.k8s.io", "ingressclasses") => IngressClass,
        ("apps", "statefulsets") => StatefulSet,
        ("", "endpoints") => Endpoints,
        ("", "nodes") => Node,
        ("", "events") | ("events.k8s.io", "events") => Event,
        ("", "namespaces") => Namespace,
        ("", "secrets") => Secret,
        ("", "serviceaccounts") => ServiceAccount,
        ("", "persistentvolumes") => PersistentVolume,
        ("", "persistentvolumeclaims") => PersistentVolumeClaim,
        ("", "componentstatuses") => ComponentStatus,
        ("apps", "deployments") => Deployment,
        ("autoscaling", "horizontalpodautoscalers") => HorizontalPodAutoscaler,
        ("", "configmaps") => ConfigMap,
        ("networking.k8s.io", "networkpolicies") => NetworkPolicy,
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => RoleBinding,
        ("certificates.k8s.io", "certificatesigningrequests") => CertificateSigningRequest,
        ("coordination.k8s.io", "leases") => Lease,
        ("storage.k8s.io", "storageclasses") => StorageClass,
        ("apps", "controllerrevisions") => ControllerRevision,
        ("", "resourcequotas") => ResourceQuota,
        ("scheduling.k8s.io", "priorityclasses") => PriorityClass,
        ("node.k8s.io", "runtimeclasses") => RuntimeClass,
        ("storage.k8s.io", "volumeattachments") => VolumeAttachment,
        ("discovery.k8s.io", "endpointslices") => EndpointSlice,
        ("storage.k8s.io", "csinodes") => CsiNode,
        ("storage.k8s.io", "csidrivers") => CsiDriver,
        ("storage.k8s.io", "csistoragecapacities") => CsiStorageCapacity,
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations" | "validatingwebhookconfigurations",
        ) => Webhook,
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            ValidatingAdmissionPolicy
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            ValidatingAdmissionPolicyBinding
        }
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => FlowSchema,
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
            PriorityLevelConfiguration
        }
        ("apiregistration.k8s.io", "apiservices") => ApiService,
        _ => Default,
    }
}

/// The column definitions for a resource's Table, in upstream's order.
pub fn columns(res: &Resource) -> Vec<Column> {
    use Printer::*;
    let role_binding = res.plural == "clusterrolebindings";
    match printer(res) {
        Pod => vec![
            NAME,
            col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", "The aggregate status of the containers in this pod."),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            wide("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            wide("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"),
            wide("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled."),
            wide("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"),
        ],
        PodTemplate => vec![
            NAME,
            col("Containers", "string", CONTAINERS_DESC),
            col("Images", "string", IMAGES_DESC),
            col("Pod Labels", "string", "The labels for the pod template."),
        ],
        PodDisruptionBudget => vec![
            NAME,
            col("Min Available", "string", "The minimum number of pods that must be available."),
            col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
            col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        ReplicationController | ReplicaSet => vec![
            NAME,
            col("Desired", "integer", "Replicas is the number of desired replicas."),
            col("Current", "integer", "Replicas is the most recently observed number of replicas."),
            col("Ready", "integer", "The number of ready replicas for this replica set."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        DaemonSet => vec![
            NAME,
            col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
            col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
            col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
            col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
            col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Job => vec![
            NAME,
            col("Status", "string", "Status of the job."),
            col("Completions", "string", "The number of pods which reached phase Succeeded."),
            col("Duration", "string", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        CronJob => vec![
            NAME,
            col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
            col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
            col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
            col("Active", "integer", "A list of pointers to currently running jobs."),
            col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Service => vec![
            NAME,
            col("Type", "string", "type determines how the Service is exposed."),
            col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
            col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            col("Port(s)", "string", "The list of ports that are exposed by this service."),
            AGE,
            wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."),
        ],
        Ingress => vec![
            NAME,
            col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
            col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
            col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
            col("Ports", "string", "Ports of TLS configurations that open"),
            AGE,
        ],
        IngressClass => vec![
            NAME,
            col("Controller", "string", "Controller that is responsible for handling this class"),
            col("Parameters", "string", "A reference to a resource with additional parameters"),
            AGE,
        ],
        StatefulSet => vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        Endpoints => vec![
            NAME,
            col("Endpoints", "string", "The set of all endpoints is the union of all subsets."),
            AGE,
        ],
        Node => vec![
            NAME,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            AGE,
            col("Version", "string", "Kubelet Version reported by the node."),
            wide("Internal-IP", "string", "List of addresses reachable to the node."),
            wide("External-IP", "string", "List of addresses reachable to the node."),
            wide("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            wide("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            wide("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ],
        Event => vec![
            col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
            col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
            col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            col("Object", "string", "The object that this event is about."),
            wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]."),
            wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
            col("Message", "string", "A human-readable description of the status of this operation."),
            wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
            wide("Count", "string", "The number of times this event has occurred."),
            Column { priority: 1, ..NAME },
        ],
        Namespace => vec![
            NAME,
            col("Status", "string", "The status of the namespace"),
            AGE,
        ],
        Secret => vec![
            NAME,
            col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
            col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
            AGE,
        ],
        ServiceAccount => vec![
            NAME,
            col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
            AGE,
        ],
        PersistentVolume => vec![
            NAME,
            col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
            col("Access Modes", "string", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
            col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
            col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
            col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
            col("StorageClass", "string", "StorageClass of the pv"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            AGE,
            wide("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec."),
        ],
        PersistentVolumeClaim => vec![
            NAME,
            col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
            col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
            col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
            col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
            AGE,
            wide("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec."),
        ],
        ComponentStatus => vec![
            NAME,
            col("Status", "string", "Status of the component conditions"),
            col("Message", "string", "Message of the component conditions"),
            col("Error", "string", "Error of the component conditions"),
        ],
        Deployment => vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
        ],
        HorizontalPodAutoscaler => vec![
            NAME,
            col("Reference", "string", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
            col("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used)."),
            col("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
            col("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
            col("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
            AGE,
        ],
        ConfigMap => vec![
            NAME,
            col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
            AGE,
        ],
        NetworkPolicy => vec![
            NAME,
            col("Pod-Selector", "string", "Selects the pods to which this NetworkPolicy object applies."),
            AGE,
        ],
        RoleBinding => {
            let (u, g, s) = if role_binding {
                (
                    "Users in the clusterRoleBinding",
                    "Groups in the clusterRoleBinding",
                    "ServiceAccounts in the clusterRoleBinding",
                )
            } else {
                (
                    "Users in the roleBinding",
                    "Groups in the roleBinding",
                    "ServiceAccounts in the roleBinding",
                )
            };
            vec![
                NAME,
                col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
                AGE,
                wide("Users", "string", u),
                wide("Groups", "string", g),
                wide("ServiceAccounts", "string", s),
            ]
        }
        CertificateSigningRequest => vec![
            NAME,
            AGE,
            col("SignerName", "string", "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`."),
            col("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
            col("RequestedDuration", "string", "expirationSeconds is the requested duration of validity of the issued certificate."),
            col("Condition", "string", "Conditions applied to the request, such as approval or denial."),
        ],
        Lease => vec![
            NAME,
            col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease."),
            AGE,
        ],
        StorageClass => vec![
            NAME,
            col("Provisioner", "string", "provisioner indicates the type of the provisioner."),
            col("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
            col("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used."),
            col("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
            AGE,
        ],
        ControllerRevision => vec![
            NAME,
            col("Controller", "string", "Controller of the object"),
            col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
            AGE,
        ],
        ResourceQuota => vec![
            NAME,
            col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
            col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
            AGE,
        ],
        PriorityClass => vec![
            NAME,
            col("Value", "integer", "value represents the integer value of this priority class."),
            col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
            AGE,
            col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
        ],
        RuntimeClass => vec![NAME, col("Handler", "string", ""), AGE],
        VolumeAttachment => vec![
            NAME,
            Column { format: "name", ..col("Attacher", "string", "attacher indicates the name of the volume driver that MUST handle this request.") },
            col("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach."),
            col("Node", "string", "nodeName represents the node that the volume should be attached to."),
            col("Attached", "boolean", "attached indicates the volume is successfully attached."),
            AGE,
        ],
        EndpointSlice => vec![
            NAME,
            col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice."),
            col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice."),
            col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."),
            AGE,
        ],
        CsiNode => vec![
            NAME,
            col("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
            AGE,
        ],
        CsiDriver => vec![
            NAME,
            col("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation."),
            col("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations."),
            col("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report."),
            col("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication."),
            col("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
            col("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports."),
            AGE,
        ],
        CsiStorageCapacity => vec![
            NAME,
            col("StorageClassName", "string", "storageClassName represents the name of the StorageClass that the reported capacity applies to."),
            col("Capacity", "string", "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields."),
        ],
        Webhook => vec![
            NAME,
            col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
            AGE,
        ],
        ValidatingAdmissionPolicy => vec![
            NAME,
            col("Validations", "integer", "Validations indicates the number of validation rules defined in this configuration"),
            col("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
            AGE,
        ],
        ValidatingAdmissionPolicyBinding => vec![
            NAME,
            col("PolicyName", "string", "PolicyName indicates the policy definition which the policy binding binded to"),
            col("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
            AGE,
        ],
        FlowSchema => vec![
            NAME,
            col("PriorityLevel", "string", "`name` is the name of the priority level configuration being referenced Required."),
            col("MatchingPrecedence", "string", "`matchingPrecedence` is used to choose among the FlowSchemas that match a given request."),
            col("DistinguisherMethod", "string", "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema. `nil` specifies that the distinguisher is disabled and thus will always be the empty string."),
            AGE,
            col("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"),
        ],
        PriorityLevelConfiguration => vec![
            NAME,
            col("Type", "string", "`type` indicates whether this priority level is subject to limitation on request execution."),
            col("NominalConcurrencyShares", "string", "`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level."),
            col("Queues", "string", "`queues` is the number of queues for this priority level."),
            col("HandSize", "string", "`handSize` is a small positive number that configures the shuffle sharding of requests into queues."),
            col("QueueLengthLimit", "string", "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time; excess requests are rejected."),
            AGE,
        ],
        ApiService => vec![
            NAME,
            col("Service", "string", "The reference to the service that hosts this API endpoint."),
            col("Available", "string", "Whether this service is available."),
            AGE,
        ],
        Default => vec![NAME, col("Created At", "date", AGE_DESC)],
    }
}

/// The cells of one Table row, matching [`columns`] one to one. `now_unix_secs` is the
/// caller's clock (ages and durations are relative to it).
pub fn cells(res: &Resource, obj: &Value, now_unix_secs: i64) -> Vec<Value> {
    use Printer::*;
    let p = Ctx {
        obj,
        now: now_unix_secs,
    };
    let name = json!(p.s("/metadata/name"));
    let age = json!(p.since("/metadata/creationTimestamp"));
    match printer(res) {
        Pod => pod_cells(&p),
        PodTemplate => {
            let (names, images) = containers(p.arr("/template/spec/containers"));
            vec![
                name,
                json!(names),
                json!(images),
                json!(format_labels(p.get("/template/metadata/labels"))),
            ]
        }
        PodDisruptionBudget => vec![
            name,
            json!(int_or_string(p.get("/spec/minAvailable"))),
            json!(int_or_string(p.get("/spec/maxUnavailable"))),
            json!(p.i("/status/disruptionsAllowed")),
            age,
        ],
        ReplicationController => {
            let (names, images) = containers(p.arr("/spec/template/spec/containers"));
            vec![
                name,
                json!(p.replicas()),
                json!(p.i("/status/replicas")),
                json!(p.i("/status/readyReplicas")),
                age,
                json!(names),
                json!(images),
                json!(format_labels(p.get("/spec/selector"))),
            ]
        }
        ReplicaSet => {
            let (names, images) = containers(p.arr("/spec/template/spec/containers"));
            vec![
                name,
                json!(p.replicas()),
                json!(p.i("/status/replicas")),
                json!(p.i("/status/readyReplicas")),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(p.get("/spec/selector"))),
            ]
        }
        DaemonSet => {
            let (names, images) = containers(p.arr("/spec/template/spec/containers"));
            vec![
                name,
                json!(p.i("/status/desiredNumberScheduled")),
                json!(p.i("/status/currentNumberScheduled")),
                json!(p.i("/status/numberReady")),
                json!(p.i("/status/updatedNumberScheduled")),
                json!(p.i("/status/numberAvailable")),
                json!(format_labels(p.get("/spec/template/spec/nodeSelector"))),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(p.get("/spec/selector"))),
            ]
        }
        Job => job_cells(&p, name, age),
        CronJob => {
            let last = match p.get("/status/lastScheduleTime") {
                Some(Value::String(_)) => p.since("/status/lastScheduleTime"),
                _ => "<none>".to_string(),
            };
            let tz = p.opt_s("/spec/timeZone").unwrap_or("<none>");
            let (names, images) =
                containers(p.arr("/spec/jobTemplate/spec/template/spec/containers"));
            vec![
                name,
                json!(p.s("/spec/schedule")),
                json!(tz),
                json!(bool_ptr(p.b("/spec/suspend"))),
                json!(p.arr("/status/active").len() as i64),
                json!(last),
                age,
                json!(names),
                json!(images),
                json!(format_label_selector(
                    p.get("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        Service => service_cells(&p, name, age),
        Ingress => {
            let class = p.opt_s("/spec/ingressClassName").unwrap_or("<none>");
            let rules = p.arr("/spec/rules");
            let mut hosts: Vec<&str> = Vec::new();
            let mut more = false;
            for rule in rules {
                if hosts.len() == 3 {
                    more = true;
                }
                let host = str_at(rule, "/host");
                if !more && !host.is_empty() {
                    hosts.push(host);
                }
            }
            let hosts = if hosts.is_empty() {
                "*".to_string()
            } else if more {
                format!("{} + {} more...", hosts.join(","), rules.len() - 3)
            } else {
                hosts.join(",")
            };
            let ports = if p.arr("/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                json!(class),
                json!(hosts),
                json!(load_balancer(p.arr("/status/loadBalancer/ingress"))),
                json!(ports),
                age,
            ]
        }
        IngressClass => {
            let params = match p.get("/spec/parameters") {
                Some(pr) if pr.is_object() => {
                    let mut s = str_at(pr, "/kind").to_string();
                    if let Some(g) = pr.get("apiGroup").and_then(Value::as_str) {
                        s = format!("{s}.{g}");
                    }
                    format!("{s}/{}", str_at(pr, "/name"))
                }
                _ => "<none>".to_string(),
            };
            vec![name, json!(p.s("/spec/controller")), json!(params), age]
        }
        StatefulSet => {
            let (names, images) = containers(p.arr("/spec/template/spec/containers"));
            vec![
                name,
                json!(format!("{}/{}", p.i("/status/readyReplicas"), p.replicas())),
                age,
                json!(names),
                json!(images),
            ]
        }
        Endpoints => vec![name, json!(format_endpoints(p.arr("/subsets"))), age],
        Node => node_cells(&p, name, age),
        Event => event_cells(res, &p),
        Namespace => vec![name, json!(p.s("/status/phase")), age],
        Secret => vec![name, json!(p.s("/type")), json!(p.map_len("/data")), age],
        ServiceAccount => vec![name, json!(p.arr("/secrets").len() as i64), age],
        PersistentVolume => {
            let claim = match p.get("/spec/claimRef") {
                Some(c) if c.is_object() => {
                    format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name"))
                }
                _ => String::new(),
            };
            let phase = if p.deleting() {
                "Terminating"
            } else {
                p.s("/status/phase")
            };
            let class = p
                .opt_s("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                .unwrap_or_else(|| p.s("/spec/storageClassName"));
            vec![
                name,
                json!(quantity(p.get("/spec/capacity/storage"))),
                json!(access_modes(p.arr("/spec/accessModes"))),
                json!(p.s("/spec/persistentVolumeReclaimPolicy")),
                json!(phase),
                json!(claim),
                json!(class),
                json!(p
                    .opt_s("/spec/volumeAttributesClassName")
                    .unwrap_or("<unset>")),
                json!(p.s("/status/reason")),
                age,
                json!(p.opt_s("/spec/volumeMode").unwrap_or("<unset>")),
            ]
        }
        PersistentVolumeClaim => {
            let phase = if p.deleting() {
                "Terminating"
            } else {
                p.s("/status/phase")
            };
            let volume = p.s("/spec/volumeName");
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    quantity(p.get("/status/capacity/storage")),
                    access_modes(p.arr("/status/accessModes")),
                )
            };
            let class = p
                .opt_s("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                .unwrap_or_else(|| p.s("/spec/storageClassName"));
            vec![
                name,
                json!(phase),
                json!(volume),
                json!(capacity),
                json!(modes),
                json!(class),
                json!(p
                    .opt_s("/spec/volumeAttributesClassName")
                    .unwrap_or("<unset>")),
                age,
                json!(p.opt_s("/spec/volumeMode").unwrap_or("<unset>")),
            ]
        }
        ComponentStatus => {
            let (mut status, mut message, mut error) = ("Unknown", "", "");
            for c in p.arr("/conditions") {
                if str_at(c, "/type") == "Healthy" {
                    status = if str_at(c, "/status") == "True" {
                        "Healthy"
                    } else {
                        "Unhealthy"
                    };
                    message = str_at(c, "/message");
                    error = str_at(c, "/error");
                    break;
                }
            }
            vec![name, json!(status), json!(message), json!(error)]
        }
        Deployment => {
            let (names, images) = containers(p.arr("/spec/template/spec/containers"));
            let selector = match p.get("/spec/selector") {
                None | Some(Value::Null) => String::new(),
                Some(sel) => match crate::selectors::LabelSelector::from_label_selector_object(sel)
                {
                    Ok(s) => s.to_string(),
                    Err(_) => "<invalid>".to_string(),
                },
            };
            vec![
                name,
                json!(format!("{}/{}", p.i("/status/readyReplicas"), p.replicas())),
                json!(p.i("/status/updatedReplicas")),
                json!(p.i("/status/availableReplicas")),
                age,
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
        HorizontalPodAutoscaler => hpa_cells(res, &p, name, age),
        ConfigMap => vec![
            name,
            json!(p.map_len("/data") + p.map_len("/binaryData")),
            age,
        ],
        NetworkPolicy => {
            // A missing podSelector is the empty selector (a struct, not a pointer, upstream).
            let sel = p.get("/spec/podSelector").cloned().unwrap_or(json!({}));
            vec![name, json!(format_label_selector(Some(&sel))), age]
        }
        RoleBinding => {
            let role = format!("{}/{}", p.s("/roleRef/kind"), p.s("/roleRef/name"));
            let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
            for s in p.arr("/subjects") {
                match str_at(s, "/kind") {
                    "ServiceAccount" => sas.push(format!(
                        "{}/{}",
                        str_at(s, "/namespace"),
                        str_at(s, "/name")
                    )),
                    "User" => users.push(str_at(s, "/name").to_string()),
                    "Group" => groups.push(str_at(s, "/name").to_string()),
                    _ => {}
                }
            }
            vec![
                name,
                json!(role),
                age,
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        CertificateSigningRequest => {
            let signer = match p.s("/spec/signerName") {
                "" => "<none>",
                s => s,
            };
            let duration = match p.get("/spec/expirationSeconds").and_then(Value::as_i64) {
                Some(secs) => human_duration(secs),
                None => "<none>".to_string(),
            };
            vec![
                name,
                age,
                json!(signer),
                json!(p.s("/spec/username")),
                json!(duration),
                json!(csr_condition(&p)),
            ]
        }
        Lease => vec![name, json!(p.s("/spec/holderIdentity")), age],
        StorageClass => {
            let mut n = p.s("/metadata/name").to_string();
            let default = [
                "storageclass.kubernetes.io~1is-default-class",
                "storageclass.beta.kubernetes.io~1is-default-class",
            ]
            .iter()
            .any(|k| p.opt_s(&format!("/metadata/annotations/{k}")) == Some("true"));
            if default {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(p.s("/provisioner")),
                json!(p.opt_s("/reclaimPolicy").unwrap_or("Delete")),
                json!(p.opt_s("/volumeBindingMode").unwrap_or("Immediate")),
                json!(p.b("/allowVolumeExpansion").unwrap_or(false)),
                age,
            ]
        }
        ControllerRevision => {
            let controller = p
                .arr("/metadata/ownerReferences")
                .iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .map(|r| {
                    let api_version = str_at(r, "/apiVersion");
                    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                    let kind = str_at(r, "/kind");
                    let gk = if group.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind}.{group}")
                    };
                    if gk.is_empty() {
                        str_at(r, "/name").to_string()
                    } else {
                        format!("{}/{}", gk.to_lowercase(), str_at(r, "/name"))
                    }
                })
                .unwrap_or_else(|| "<none>".to_string());
            vec![name, json!(controller), json!(p.i("/revision")), age]
        }
        ResourceQuota => {
            let mut keys: Vec<&String> = match p.get("/status/hard") {
                Some(Value::Object(m)) => m.keys().collect(),
                _ => Vec::new(),
            };
            keys.sort();
            let (mut req, mut lim) = (Vec::new(), Vec::new());
            for k in keys {
                let used = p.get("/status/used").and_then(|u| u.get(k.as_str()));
                let hard = p.get("/status/hard").and_then(|u| u.get(k.as_str()));
                let entry = format!("{k}: {}/{}", quantity_or_zero(used), quantity_or_zero(hard));
                let parts: Vec<&str> = k.split('.').collect();
                if parts.len() > 1 && parts[0] == "limits" {
                    lim.push(entry);
                } else {
                    req.push(entry);
                }
            }
            vec![name, json!(req.join(", ")), json!(lim.join(", ")), age]
        }
        PriorityClass => vec![
            name,
            json!(p.i("/value")),
            json!(p.b("/globalDefault").unwrap_or(false)),
            age,
            json!(p.s("/preemptionPolicy")),
        ],
        RuntimeClass => vec![name, json!(p.s("/handler")), age],
        VolumeAttachment => vec![
            name,
            json!(p.s("/spec/attacher")),
            json!(p.s("/spec/source/persistentVolumeName")),
            json!(p.s("/spec/nodeName")),
            json!(p.b("/status/attached").unwrap_or(false)),
            age,
        ],
        EndpointSlice => {
            let ports: Vec<String> = p
                .arr("/ports")
                .iter()
                .map(|port| match port.get("port").and_then(Value::as_i64) {
                    Some(n) => n.to_string(),
                    None => match port.get("name").and_then(Value::as_str) {
                        Some(n) => n.to_string(),
                        None => "*".to_string(),
                    },
                })
                .collect();
            let addrs: Vec<String> = p
                .arr("/endpoints")
                .iter()
                .flat_map(|e| arr_at(e, "/addresses").iter())
                .map(|a| a.as_str().unwrap_or("").to_string())
                .collect();
            vec![
                name,
                json!(p.s("/addressType")),
                json!(list_with_more(&ports, 3)),
                json!(list_with_more(&addrs, 3)),
                age,
            ]
        }
        CsiNode => vec![name, json!(p.arr("/spec/drivers").len() as i64), age],
        CsiDriver => {
            let tokens = match p.get("/spec/tokenRequests") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|t| str_at(t, "/audience"))
                    .collect::<Vec<_>>()
                    .join(","),
                _ => "<unset>".to_string(),
            };
            let modes: Vec<&str> = p
                .arr("/spec/volumeLifecycleModes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let modes = if modes.is_empty() {
                "<none>".to_string()
            } else {
                modes.join(",")
            };
            vec![
                name,
                json!(p.b("/spec/attachRequired").unwrap_or(true)),
                json!(p.b("/spec/podInfoOnMount").unwrap_or(false)),
                json!(p.b("/spec/storageCapacity").unwrap_or(false)),
                json!(tokens),
                json!(p.b("/spec/requiresRepublish").unwrap_or(false)),
                json!(modes),
                age,
            ]
        }
        CsiStorageCapacity => {
            let cap = match p.get("/capacity") {
                Some(v) if !v.is_null() => quantity(Some(v)),
                _ => "<unset>".to_string(),
            };
            vec![name, json!(p.s("/storageClassName")), json!(cap)]
        }
        Webhook => vec![name, json!(p.arr("/webhooks").len() as i64), age],
        ValidatingAdmissionPolicy => {
            let param = match p.get("/spec/paramKind") {
                Some(k) if k.is_object() => {
                    format!("{}/{}", str_at(k, "/apiVersion"), str_at(k, "/kind"))
                }
                _ => "<unset>".to_string(),
            };
            vec![
                name,
                json!(p.arr("/spec/validations").len() as i64),
                json!(param),
                age,
            ]
        }
        ValidatingAdmissionPolicyBinding => {
            let param = match p.get("/spec/paramRef") {
                Some(r) if r.is_object() => {
                    let n = str_at(r, "/name");
                    let ns = str_at(r, "/namespace");
                    if !n.is_empty() {
                        if ns.is_empty() {
                            format!("*/{n}")
                        } else {
                            format!("{ns}/{n}")
                        }
                    } else if let Some(sel) = r.get("selector").filter(|s| !s.is_null()) {
                        format_label_selector(Some(sel))
                    } else {
                        "<unset>".to_string()
                    }
                }
                _ => "<unset>".to_string(),
            };
            vec![name, json!(p.s("/spec/policyName")), json!(param), age]
        }
        FlowSchema => {
            let dm = p
                .opt_s("/spec/distinguisherMethod/type")
                .unwrap_or("<none>");
            let missing = p
                .arr("/status/conditions")
                .iter()
                .find(|c| str_at(c, "/type") == "Dangling")
                .map(|c| str_at(c, "/status"))
                .unwrap_or("?");
            vec![
                name,
                json!(p.s("/spec/priorityLevelConfiguration/name")),
                json!(p.i("/spec/matchingPrecedence")),
                json!(dm),
                age,
                json!(missing),
            ]
        }
        PriorityLevelConfiguration => {
            let none = || json!("<none>");
            let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
            if let Some(l) = p.get("/spec/limited").filter(|l| l.is_object()) {
                ncs = json!(int_at(l, "/nominalConcurrencyShares"));
                if let Some(q) = l
                    .pointer("/limitResponse/queuing")
                    .filter(|q| q.is_object())
                {
                    queues = json!(int_at(q, "/queues"));
                    hand = json!(int_at(q, "/handSize"));
                    qll = json!(int_at(q, "/queueLengthLimit"));
                }
            }
            vec![name, json!(p.s("/spec/type")), ncs, queues, hand, qll, age]
        }
        ApiService => {
            let service = match p.get("/spec/service") {
                Some(s) if s.is_object() => {
                    format!("{}/{}", str_at(s, "/namespace"), str_at(s, "/name"))
                }
                _ => "Local".to_string(),
            };
            let available = p
                .arr("/status/conditions")
                .iter()
                .find(|c| str_at(c, "/type") == "Available")
                .map(|c| {
                    let status = str_at(c, "/status");
                    let reason = str_at(c, "/reason");
                    if status != "True" && !reason.is_empty() {
                        format!("{status} ({reason})")
                    } else {
                        status.to_string()
                    }
                })
                .unwrap_or_else(|| "Unknown".to_string());
            vec![name, json!(service), json!(available), age]
        }
        Default => {
            let created = parse_time(p.s("/metadata/creationTimestamp"))
                .map(|(secs, _)| format_time(secs))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
            vec![name, json!(created)]
        }
    }
}

/// Row `conditions` upstream attaches (pods in a terminal phase are `Completed`), or None.
pub fn row_conditions(res: &Resource, obj: &Value) -> Option<Value> {
    if printer(res) != Printer::Pod {
        return None;
    }
    let (reason, message) = match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => ("Succeeded", "The pod has completed successfully."),
        Some("Failed") => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ---------------------------------------------------------------------------------------
// Per-kind cell builders
// ---------------------------------------------------------------------------------------

fn pod_cells(p: &Ctx) -> Vec<Value> {
    let spec_containers = p.arr("/spec/containers");
    let init_specs = p.arr("/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
    };
    let mut total = spec_containers.len() as i64;
    total += init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .count() as i64;

    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut ready = 0i64;
    // Unix nanoseconds of the latest restart; None is Go's zero time.
    let mut last_restart: Option<i128> = None;
    let mut sidecar_last_restart: Option<i128> = None;
    let later = |cur: Option<i128>, t: Option<i128>| match (cur, t) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (None, b) => b,
        (a, None) => a,
    };

    let phase = p.s("/status/phase");
    let mut reason = phase.to_string();
    if let Some(r) = p.opt_s("/status/reason").filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    for c in p.arr("/status/conditions") {
        if str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let init_statuses = p.arr("/status/initContainerStatuses");
    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        restarts += int_at(cs, "/restartCount");
        let finished = terminated_finished(cs);
        last_restart = later(last_restart, finished);
        let is_sidecar = restartable(str_at(cs, "/name"));
        if is_sidecar {
            sidecar_restarts += int_at(cs, "/restartCount");
            sidecar_last_restart = later(sidecar_last_restart, finished);
        }
        let terminated = cs.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = cs
            .pointer("/state/waiting")
            .filter(|w| w.is_object())
            .map(|w| str_at(w, "/reason"));
        if let Some(t) = terminated.filter(|t| int_at(t, "/exitCode") == 0) {
            let _ = t;
            continue;
        }
        if is_sidecar && cs.get("started").and_then(Value::as_bool) == Some(true) {
            if cs.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, "/reason");
            reason = if r.is_empty() {
                let signal = int_at(t, "/signal");
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int_at(t, "/exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) = waiting_reason.filter(|w| !w.is_empty() && *w != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = p
        .arr("/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Initialized")
        .map(|c| str_at(c, "/status") == "True")
        .unwrap_or(false);
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for cs in p.arr("/status/containerStatuses").iter().rev() {
            restarts += int_at(cs, "/restartCount");
            last_restart = later(last_restart, terminated_finished(cs));
            let waiting = cs.pointer("/state/waiting").filter(|w| w.is_object());
            let terminated = cs.pointer("/state/terminated").filter(|t| t.is_object());
            let running = cs.pointer("/state/running").filter(|r| r.is_object());
            if let Some(w) = waiting.filter(|w| !str_at(w, "/reason").is_empty()) {
                reason = str_at(w, "/reason").to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, "/reason");
                reason = if !r.is_empty() {
                    r.to_string()
                } else if int_at(t, "/signal") != 0 {
                    format!("Signal:{}", int_at(t, "/signal"))
                } else {
                    format!("ExitCode:{}", int_at(t, "/exitCode"))
                };
            } else if cs.get("ready").and_then(Value::as_bool) == Some(true) && running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = p
                .arr("/status/conditions")
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if p.deleting() && p.s("/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if p.deleting() && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => {
            let ago = human_duration_nanos(i128::from(p.now) * 1_000_000_000 - t);
            format!("{restarts} ({ago} ago)")
        }
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = p
        .arr("/status/podIPs")
        .first()
        .map(|ip| str_at(ip, "/ip"))
        .unwrap_or("");
    let gates = p.arr("/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = p.arr("/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, "/conditionType");
                conds
                    .iter()
                    .find(|c| str_at(c, "/type") == t)
                    .map(|c| str_at(c, "/status") == "True")
                    .unwrap_or(false)
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(p.s("/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_str),
        json!(p.since("/metadata/creationTimestamp")),
        json!(or_none(pod_ip)),
        json!(or_none(p.s("/spec/nodeName"))),
        json!(or_none(p.s("/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

fn terminated_finished(cs: &Value) -> Option<i128> {
    let t = cs
        .pointer("/lastState/terminated")
        .filter(|t| t.is_object())?;
    let (secs, nanos) = parse_time(str_at(t, "/finishedAt"))?;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

fn job_cells(p: &Ctx, name: Value, age: Value) -> Vec<Value> {
    let succeeded = p.i("/status/succeeded");
    let completions = match p.get("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = p.i("/spec/parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(p.s("/status/startTime"));
    let done = parse_time(p.s("/status/completionTime"));
    let duration = match (start, done) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration_nanos(
            i128::from(p.now) * 1_000_000_000 - (i128::from(s.0) * 1_000_000_000 + i128::from(s.1)),
        ),
        (Some(s), Some(d)) => human_duration_nanos(
            (i128::from(d.0) * 1_000_000_000 + i128::from(d.1))
                - (i128::from(s.0) * 1_000_000_000 + i128::from(s.1)),
        ),
    };
    let conds = p.arr("/status/conditions");
    let has = |t: &str| {
        conds
            .iter()
            .find(|c| str_at(c, "/type") == t)
            .map(|c| str_at(c, "/status") == "True")
            .unwrap_or(false)
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if p.deleting() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(p.arr("/spec/template/spec/containers"));
    vec![
        name,
        json!(status),
        json!(completions),
        json!(duration),
        age,
        json!(names),
        json!(images),
        json!(format_label_selector(p.get("/spec/selector"))),
    ]
}

fn service_cells(p: &Ctx, name: Value, age: Value) -> Vec<Value> {
    let svc_type = p.s("/spec/type");
    let cluster_ip = p
        .arr("/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = p
        .arr("/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer(p.arr("/status/loadBalancer/ingress"));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => p.s("/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = p
        .arr("/spec/ports")
        .iter()
        .map(|port| {
            let proto = port
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            let node_port = int_at(port, "/nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{proto}", int_at(port, "/port"))
            } else {
                format!("{}/{proto}", int_at(port, "/port"))
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name,
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        age,
        json!(format_labels(p.get("/spec/selector"))),
    ]
}

fn node_cells(p: &Ctx, name: Value, age: Value) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    // Upstream keeps the last condition of each type.
    if let Some(c) = p
        .arr("/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(if str_at(c, "/status") == "True" {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if p.b("/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(Value::Object(labels)) = p.get("/metadata/labels") {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.push(v.to_string());
                }
            }
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        p.arr("/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == t)
            .map(|a| str_at(a, "/address").to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        name,
        json!(status.join(",")),
        json!(roles),
        age,
        json!(p.s("/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(p.s("/status/nodeInfo/osImage"))),
        json!(unknown(p.s("/status/nodeInfo/kernelVersion"))),
        json!(unknown(p.s("/status/nodeInfo/containerRuntimeVersion"))),
    ]
}

/// Core v1 events and events.k8s.io/v1 events share one printer (upstream converts the
/// latter to the internal core Event first).
fn event_cells(res: &Resource, p: &Ctx) -> Vec<Value> {
    let new_api = res.group == "events.k8s.io";
    let (first_ts, last_ts, count_path, involved, message, source_comp, source_host) = if new_api {
        (
            "/deprecatedFirstTimestamp",
            "/deprecatedLastTimestamp",
            "/deprecatedCount",
            "/regarding",
            "/note",
            "/deprecatedSource/component",
            "/deprecatedSource/host",
        )
    } else {
        (
            "/firstTimestamp",
            "/lastTimestamp",
            "/count",
            "/involvedObject",
            "/message",
            "/source/component",
            "/source/host",
        )
    };
    let set = |path: &str| parse_time(p.s(path)).is_some();
    let first = if set(first_ts) {
        p.since(first_ts)
    } else {
        p.since("/eventTime")
    };
    let mut last = if set(last_ts) {
        p.since(last_ts)
    } else {
        first.clone()
    };
    let mut count = p.i(count_path);
    if p.get("/series").is_some_and(Value::is_object) {
        last = p.since("/series/lastObservedTime");
        count = p.i("/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = p.s(&format!("{involved}/kind")).to_lowercase();
    let obj_name = p.s(&format!("{involved}/name"));
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let (controller, instance) = if new_api {
        (p.s("/reportingController"), p.s("/reportingInstance"))
    } else {
        (p.s("/reportingComponent"), p.s("/reportingInstance"))
    };
    let component = first_non_empty(p.s(source_comp), controller);
    let host = first_non_empty(p.s(source_host), instance);
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(p.s("/type")),
        json!(p.s("/reason")),
        json!(target),
        json!(p.s(&format!("{involved}/fieldPath"))),
        json!(source),
        json!(p.s(message).trim()),
        json!(first),
        json!(count),
        json!(p.s("/metadata/name")),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn hpa_cells(res: &Resource, p: &Ctx, name: Value, age: Value) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        p.s("/spec/scaleTargetRef/kind"),
        p.s("/spec/scaleTargetRef/name")
    );
    let targets = if res.version == "v1" {
        // autoscaling/v1 carries only a CPU utilisation target.
        match p
            .get("/spec/targetCPUUtilizationPercentage")
            .and_then(Value::as_i64)
        {
            Some(t) => {
                let current = match p
                    .get("/status/currentCPUUtilizationPercentage")
                    .and_then(Value::as_i64)
                {
                    Some(c) => format!("{c}%"),
                    None => "<unknown>".to_string(),
                };
                format!("cpu: {current}/{t}%")
            }
            None => "<none>".to_string(),
        }
    } else {
        format_hpa_metrics(p.arr("/spec/metrics"), p.arr("/status/currentMetrics"))
    };
    let min = match p.get("/spec/minReplicas").and_then(Value::as_i64) {
        Some(m) => m.to_string(),
        None => "<unset>".to_string(),
    };
    vec![
        name,
        json!(reference),
        json!(targets),
        json!(min),
        json!(p.i("/spec/maxReplicas")),
        json!(p.i("/status/currentReplicas")),
        age,
    ]
}

fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let st = |source: &str, field: &str| -> Option<String> {
            let cur = status?.get(source)?.get("current")?.get(field)?;
            if cur.is_null() {
                None
            } else {
                Some(quantity(Some(cur)))
            }
        };
        let entry = match str_at(spec, "/type") {
            t @ ("External" | "Object") => {
                let source = if t == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = spec.pointer(&format!("/{source}/target"));
                let avg = target
                    .and_then(|t| t.get("averageValue"))
                    .filter(|v| !v.is_null());
                if let Some(avg) = avg {
                    let current = st(source, "averageValue").unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{} (avg)", quantity(Some(avg)))
                } else {
                    let current = st(source, "value").unwrap_or_else(|| "<unknown>".into());
                    format!(
                        "{current}/{}",
                        quantity(target.and_then(|t| t.get("value")))
                    )
                }
            }
            "Pods" => {
                let current = st("pods", "averageValue").unwrap_or_else(|| "<unknown>".into());
                format!(
                    "{current}/{}",
                    quantity(spec.pointer("/pods/target/averageValue"))
                )
            }
            t @ ("Resource" | "ContainerResource") => {
                let source = if t == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let rname = spec
                    .pointer(&format!("/{source}/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let target = spec.pointer(&format!("/{source}/target"));
                let avg = target
                    .and_then(|t| t.get("averageValue"))
                    .filter(|v| !v.is_null());
                if let Some(avg) = avg {
                    let current = st(source, "averageValue").unwrap_or_else(|| "<unknown>".into());
                    format!("{rname}: {current}/{}", quantity(Some(avg)))
                } else {
                    let current = status
                        .and_then(|s| s.get(source))
                        .and_then(|s| s.pointer("/current/averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let target = target
                        .and_then(|t| t.get("averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{rname}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        format!("{} + {} more...", list.join(", "), count - 2)
    } else {
        list.join(", ")
    }
}

fn csr_condition(p: &Ctx) -> String {
    let (mut approved, mut denied, mut failed) = (false, false, false);
    for c in p.arr("/status/conditions") {
        match str_at(c, "/type") {
            "Approved" => approved = true,
            "Denied" => denied = true,
            "Failed" => failed = true,
            _ => {}
        }
    }
    let mut s = if denied {
        "Denied"
    } else if approved {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if failed {
        s.push_str(",Failed");
    }
    if !p.s("/status/certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

// ---------------------------------------------------------------------------------------
// Formatting helpers shared with upstream's printers
// ---------------------------------------------------------------------------------------

struct Ctx<'a> {
    obj: &'a Value,
    now: i64,
}

impl<'a> Ctx<'a> {
    fn get(&self, ptr: &str) -> Option<&'a Value> {
        self.obj.pointer(ptr)
    }
    fn s(&self, ptr: &str) -> &'a str {
        str_at(self.obj, ptr)
    }
    fn opt_s(&self, ptr: &str) -> Option<&'a str> {
        self.get(ptr).and_then(Value::as_str)
    }
    fn i(&self, ptr: &str) -> i64 {
        int_at(self.obj, ptr)
    }
    fn b(&self, ptr: &str) -> Option<bool> {
        self.get(ptr).and_then(Value::as_bool)
    }
    fn arr(&self, ptr: &str) -> &'a [Value] {
        arr_at(self.obj, ptr)
    }
    fn map_len(&self, ptr: &str) -> i64 {
        match self.get(ptr) {
            Some(Value::Object(m)) => m.len() as i64,
            _ => 0,
        }
    }
    /// `.spec.replicas`, which defaulting sets to 1 when absent.
    fn replicas(&self) -> i64 {
        self.get("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    }
    fn deleting(&self) -> bool {
        matches!(
            self.get("/metadata/deletionTimestamp"),
            Some(Value::String(_))
        )
    }
    /// upstream's `translateTimestampSince`: `<unknown>` for an unset time.
    fn since(&self, ptr: &str) -> String {
        match parse_time(self.s(ptr)) {
            Some((secs, nanos)) => human_duration_nanos(
                i128::from(self.now) * 1_000_000_000
                    - (i128::from(secs) * 1_000_000_000 + i128::from(nanos)),
            ),
            None => "<unknown>".to_string(),
        }
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn arr_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn containers(list: &[Value]) -> (String, String) {
    let names: Vec<&str> = list.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
pub fn format_labels(map: Option<&Value>) -> String {
    let Some(Value::Object(m)) = map else {
        return "<none>".to_string();
    };
    if m.is_empty() {
        return "<none>".to_string();
    }
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `metav1.FormatLabelSelector`: the selector's canonical string, `<none>` when it selects
/// everything or is unset, `<error>` when invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    let sel = match sel {
        None | Some(Value::Null) => return "<none>".to_string(),
        Some(s) => s,
    };
    match crate::selectors::LabelSelector::from_label_selector_object(sel) {
        Ok(s) => {
            let s = s.to_string();
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        }
        Err(_) => "<error>".to_string(),
    }
}

fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "N/A".to_string(),
    }
}

fn bool_ptr(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// A `resource.Quantity` as stored (strings are already canonical once decoded).
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

fn quantity_or_zero(v: Option<&Value>) -> String {
    quantity(v)
}

fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

/// Load-balancer ingress points, deduplicated and sorted (server side prints the wide form).
fn load_balancer(ingress: &[Value]) -> String {
    let mut out: Vec<&str> = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, "/ip");
            let host = str_at(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out.join(",")
}

fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                let port = int_at(port, "/port");
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

fn list_with_more(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    let ret = shown.join(",");
    if items.len() > max {
        format!("{ret} + {} more...", items.len() - max)
    } else if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

// ---------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------

/// upstream's `duration.HumanDuration` for a number of whole seconds.
pub fn human_duration(secs: i64) -> String {
    human_duration_nanos(i128::from(secs) * 1_000_000_000)
}

/// upstream's `duration.HumanDuration` (Go `time.Duration` is nanoseconds).
pub fn human_duration_nanos(d: i128) -> String {
    const S: i128 = 1_000_000_000;
    let seconds = d / S; // truncates toward zero like Go's int(d.Seconds())
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / (60 * S);
    if minutes < 10 {
        let s = (d / S) % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / (3600 * S);
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Parse an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, optional fraction, `Z` or
/// `±hh:mm`) into Unix seconds and nanoseconds. Go's zero time and garbage give None.
pub fn parse_time(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let o = h * 3600 + m * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    if year == 1 && month == 1 && day == 1 && hour == 0 && min == 0 && sec == 0 && nanos == 0 {
        return None; // Go's zero time prints as <unknown>
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86400 + hour * 3600 + min * 60 + sec - offset, nanos))
}

/// RFC 3339 in UTC with second precision, as Go's `time.RFC3339` prints it.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{lookup, RESOURCES};

    /// 2024-05-01T12:00:00Z
    fn now() -> i64 {
        parse_time("2024-05-01T12:00:00Z").unwrap().0
    }

    fn row(group: &str, version: &str, plural: &str, obj: Value) -> Vec<Value> {
        let res = lookup(group, version, plural).unwrap();
        let cols = columns(res);
        let cells = cells(res, &obj, now());
        assert_eq!(cols.len(), cells.len(), "{plural}: columns vs cells");
        cells
    }

    fn header(group: &str, version: &str, plural: &str) -> Vec<&'static str> {
        columns(lookup(group, version, plural).unwrap())
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn human_duration_matches_upstream() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (303, "5m3s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600 + 4 * 60, "3h4m"),
            (5 * 3600, "5h"),
            (20 * 3600, "20h"),
            (2 * 86400, "2d"),
            (3 * 86400 + 5 * 3600, "3d5h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (10 * 365 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn time_parsing() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Some((1714564800, 0)));
        assert_eq!(
            parse_time("2024-05-01T14:00:00.250000+02:00"),
            Some((1714564800, 250_000_000))
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(1714564800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn every_resource_has_name_column_and_matching_cells() {
        for res in RESOURCES {
            let cols = columns(res);
            let name_cols: Vec<_> = cols.iter().filter(|c| c.format == "name").collect();
            assert!(!name_cols.is_empty(), "{}", res.plural);
            if printer(res) != Printer::Event {
                assert_eq!(cols[0].name, "Name");
                assert_eq!(cols[0].format, "name");
            }
            let obj =
                json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T11:59:00Z"}});
            assert_eq!(cells(res, &obj, now()).len(), cols.len(), "{}", res.plural);
            // Garbage never panics.
            assert_eq!(
                cells(res, &json!(42), now()).len(),
                cols.len(),
                "{}",
                res.plural
            );
        }
        let c = serde_json::to_value(NAME).unwrap();
        assert_eq!(
            c.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["name", "type", "format", "description", "priority"]
        );
    }

    #[test]
    fn pod_running_with_restarts() {
        assert_eq!(
            header("", "v1", "pods"),
            ["Name", "Ready", "Status", "Restarts", "Age"]
        );
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d4b9c8f5d-x2x9q", "namespace": "default", "creationTimestamp": "2024-05-01T09:00:00Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "sidecar", "image": "busybox"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
                "containerStatuses": [
                    {"name": "nginx", "ready": true, "restartCount": 2, "state": {"running": {"startedAt": "2024-05-01T11:50:00Z"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:49:57Z"}}},
                    {"name": "sidecar", "ready": true, "restartCount": 0, "state": {"running": {}}}
                ]
            }
        });
        assert_eq!(
            row("", "v1", "pods", pod),
            vec![
                json!("web-7d4b9c8f5d-x2x9q"),
                json!("2/2"),
                json!("Running"),
                json!("2 (10m ago)"),
                json!("3h"),
                json!("10.244.1.5"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn pod_statuses() {
        let base = |status: Value, extra_meta: Value, spec: Value| {
            let mut meta = json!({"name": "p", "creationTimestamp": "2024-05-01T11:59:15Z"});
            for (k, v) in extra_meta.as_object().unwrap() {
                meta[k] = v.clone();
            }
            json!({"metadata": meta, "spec": spec, "status": status})
        };
        let one = json!({"containers": [{"name": "app", "image": "app"}]});
        // Pending, unscheduled.
        let r = row(
            "",
            "v1",
            "pods",
            base(json!({"phase": "Pending"}), json!({}), one.clone()),
        );
        assert_eq!(
            r[1..5],
            [json!("0/1"), json!("Pending"), json!("0"), json!("45s")]
        );
        // CrashLoopBackOff.
        let crash = json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}}]});
        let r = row("", "v1", "pods", base(crash, json!({}), one.clone()));
        assert_eq!(r[2..4], [json!("CrashLoopBackOff"), json!("5 (2m ago)")]);
        // Completed (Succeeded) gets a row condition.
        let done = json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        let pod = base(done, json!({}), one.clone());
        let r = row("", "v1", "pods", pod.clone());
        assert_eq!(r[1..3], [json!("0/1"), json!("Completed")]);
        let res = lookup("", "v1", "pods").unwrap();
        assert_eq!(row_conditions(res, &pod).unwrap()[0]["reason"], "Succeeded");
        // Terminated without reason: ExitCode / Signal.
        let sig = json!({"phase": "Running", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]});
        assert_eq!(
            row("", "v1", "pods", base(sig, json!({}), one.clone()))[2],
            "Signal:9"
        );
        // Terminating.
        let running = json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]});
        let r = row(
            "",
            "v1",
            "pods",
            base(
                running.clone(),
                json!({"deletionTimestamp": "2024-05-01T12:00:00Z"}),
                one.clone(),
            ),
        );
        assert_eq!(r[2], "Terminating");
        // NodeLost while deleting -> Unknown.
        let mut lost = running.clone();
        lost["reason"] = json!("NodeLost");
        let r = row(
            "",
            "v1",
            "pods",
            base(
                lost,
                json!({"deletionTimestamp": "2024-05-01T12:00:00Z"}),
                one.clone(),
            ),
        );
        assert_eq!(r[2], "Unknown");
        // Evicted: status.reason wins over phase.
        let evicted = json!({"phase": "Failed", "reason": "Evicted"});
        assert_eq!(
            row("", "v1", "pods", base(evicted, json!({}), one.clone()))[2],
            "Evicted"
        );
        // Scheduling gated.
        let gated = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]});
        assert_eq!(
            row("", "v1", "pods", base(gated, json!({}), one.clone()))[2],
            "SchedulingGated"
        );
        // Completed but a container still running -> NotReady / Running.
        let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let mixed = json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "ready": true, "state": {"running": {}}}]});
        assert_eq!(
            row(
                "",
                "v1",
                "pods",
                base(mixed.clone(), json!({}), two.clone())
            )[2],
            "NotReady"
        );
        let mut mixed_ready = mixed;
        mixed_ready["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(
            row("", "v1", "pods", base(mixed_ready, json!({}), two))[2],
            "Running"
        );
    }

    #[test]
    fn pod_init_containers_and_gates() {
        let spec = json!({
            "initContainers": [{"name": "init-db"}, {"name": "init-cache"}, {"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
            "readinessGates": [{"conditionType": "example.com/lb"}]
        });
        let meta = json!({"name": "p", "creationTimestamp": "2024-05-01T11:00:00Z"});
        // Second init container running: Init:1/3.
        let status = json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-db", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "init-cache", "state": {"running": {}}},
            {"name": "proxy", "state": {"waiting": {"reason": "PodInitializing"}}}
        ], "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]});
        let r = row(
            "",
            "v1",
            "pods",
            json!({"metadata": meta, "spec": spec, "status": status}),
        );
        assert_eq!(r[1..3], [json!("0/2"), json!("Init:1/3")]);
        assert_eq!(r[8], "0/1");
        // Init container crash looping.
        let status = json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-db", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:30Z"}}}
        ]});
        let r = row(
            "",
            "v1",
            "pods",
            json!({"metadata": meta, "spec": spec, "status": status}),
        );
        assert_eq!(
            r[2..4],
            [json!("Init:CrashLoopBackOff"), json!("3 (30s ago)")]
        );
        // Init failed with exit code.
        let status = json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-db", "state": {"terminated": {"exitCode": 2}}}]});
        let r = row(
            "",
            "v1",
            "pods",
            json!({"metadata": meta, "spec": spec, "status": status}),
        );
        assert_eq!(r[2], "Init:ExitCode:2");
        // Sidecar started and ready, app running: 2/2 Running, gate true.
        let status = json!({"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "example.com/lb", "status": "True"}],
            "initContainerStatuses": [
                {"name": "init-db", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "init-cache", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "proxy", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:30:00Z"}}}],
            "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]});
        let r = row(
            "",
            "v1",
            "pods",
            json!({"metadata": meta, "spec": spec, "status": status}),
        );
        assert_eq!(
            r[1..4],
            [json!("2/2"), json!("Running"), json!("1 (30m ago)")]
        );
        assert_eq!(r[8], "1/1");
    }

    #[test]
    fn deployment_replicaset_statefulset_daemonset() {
        let tmpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "fluent-bit:3"}]}});
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-04-29T12:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": tmpl},
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}
        });
        assert_eq!(
            header("apps", "v1", "deployments"),
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
        assert_eq!(
            row("apps", "v1", "deployments", d),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d"),
                json!("nginx,log"),
                json!("nginx:1.25,fluent-bit:3"),
                json!("app=web")
            ]
        );
        let rs = json!({
            "metadata": {"name": "web-7d4b9c8f5d", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f5d"}}, "template": tmpl},
            "status": {"replicas": 3, "readyReplicas": 3}
        });
        assert_eq!(
            row("apps", "v1", "replicasets", rs),
            vec![
                json!("web-7d4b9c8f5d"),
                json!(3),
                json!(3),
                json!(3),
                json!("60m"),
                json!("nginx,log"),
                json!("nginx:1.25,fluent-bit:3"),
                json!("app=web,pod-template-hash=7d4b9c8f5d")
            ]
        );
        let sts = json!({
            "metadata": {"name": "db", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}}, "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        assert_eq!(
            header("apps", "v1", "statefulsets"),
            ["Name", "Ready", "Age"]
        );
        assert_eq!(
            row("apps", "v1", "statefulsets", sts),
            vec![
                json!("db"),
                json!("1/3"),
                json!("5m"),
                json!("pg"),
                json!("postgres:16")
            ]
        );
        let ds = json!({
            "metadata": {"name": "kube-proxy", "creationTimestamp": "2024-04-01T12:00:00Z"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.0"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}
        });
        assert_eq!(
            row("apps", "v1", "daemonsets", ds),
            vec![
                json!("kube-proxy"),
                json!(3),
                json!(3),
                json!(3),
                json!(3),
                json!(3),
                json!("kubernetes.io/os=linux"),
                json!("30d"),
                json!("kube-proxy"),
                json!("registry.k8s.io/kube-proxy:v1.33.0"),
                json!("k8s-app=kube-proxy")
            ]
        );
        let rc = json!({"metadata": {"name": "old", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"replicas": 2, "selector": {"app": "old"}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            row("", "v1", "replicationcontrollers", rc),
            vec![
                json!("old"),
                json!(2),
                json!(2),
                json!(1),
                json!("60m"),
                json!("c"),
                json!("i"),
                json!("app=old")
            ]
        );
    }

    #[test]
    fn jobs_and_cronjobs() {
        assert_eq!(
            header("batch", "v1", "jobs"),
            ["Name", "Status", "Completions", "Duration", "Age"]
        );
        let job = |status: Value, spec_extra: Value| {
            let mut spec = json!({"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}, "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}});
            for (k, v) in spec_extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            json!({"metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:50:00Z"}, "spec": spec, "status": status})
        };
        let done = job(
            json!({"succeeded": 1, "startTime": "2024-05-01T11:50:00Z", "completionTime": "2024-05-01T11:50:42Z",
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
            json!({"completions": 1, "parallelism": 1}),
        );
        assert_eq!(
            row("batch", "v1", "jobs", done),
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("42s"),
                json!("10m"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=abc")
            ]
        );
        let running = job(
            json!({"active": 2, "startTime": "2024-05-01T11:57:00Z"}),
            json!({"parallelism": 2}),
        );
        let r = row("batch", "v1", "jobs", running);
        assert_eq!(r[1..4], [json!("Running"), json!("0/1 of 2"), json!("3m")]);
        let failed = job(
            json!({"failed": 6, "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
            json!({"completions": 3}),
        );
        assert_eq!(
            row("batch", "v1", "jobs", failed)[1..4],
            [json!("Failed"), json!("0/3"), json!("")]
        );
        let suspended = job(
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
            json!({}),
        );
        assert_eq!(row("batch", "v1", "jobs", suspended)[1], "Suspended");

        let cj = json!({
            "metadata": {"name": "backup", "creationTimestamp": "2024-04-30T12:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup:1"}]}}}}},
            "status": {"active": [{"name": "backup-123"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}
        });
        assert_eq!(
            header("batch", "v1", "cronjobs"),
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age"
            ]
        );
        assert_eq!(
            row("batch", "v1", "cronjobs", cj),
            vec![
                json!("backup"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("24h"),
                json!("b"),
                json!("backup:1"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn services_endpoints_slices_ingress() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"], "selector": {"app": "web"},
                     "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        });
        assert_eq!(
            row("", "v1", "services", svc),
            vec![
                json!("web"),
                json!("ClusterIP"),
                json!("10.96.12.34"),
                json!("<none>"),
                json!("80/TCP,53/UDP"),
                json!("120m"),
                json!("app=web")
            ]
        );
        let lb = json!({
            "metadata": {"name": "lb", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.20"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]}}
        });
        let r = row("", "v1", "services", lb);
        assert_eq!(
            r[3..5],
            [json!("203.0.113.10,lb.example.com"), json!("443:31443/TCP")]
        );
        assert_eq!(r[6], "<none>");
        let pending = json!({"metadata": {"name": "p"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.21"]}});
        assert_eq!(
            row("", "v1", "services", pending)[3..5],
            [json!("<pending>"), json!("<none>")]
        );
        let ext = json!({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(
            row("", "v1", "services", ext)[2..4],
            [json!("<none>"), json!("db.example.com")]
        );

        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "subsets": [{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "ports": [{"port": 8080}, {"port": 9090}]}]
        });
        assert_eq!(
            row("", "v1", "endpoints", ep)[1],
            "10.244.1.5:8080,10.244.2.7:8080,10.244.1.5:9090 + 1 more..."
        );
        assert_eq!(
            row("", "v1", "endpoints", json!({"metadata": {"name": "e"}}))[1],
            "<none>"
        );

        let slice = json!({
            "metadata": {"name": "web-abc12", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.7"]}]
        });
        assert_eq!(
            row("discovery.k8s.io", "v1", "endpointslices", slice),
            vec![
                json!("web-abc12"),
                json!("IPv4"),
                json!("8080"),
                json!("10.244.1.5,10.244.2.7"),
                json!("120m")
            ]
        );
        assert_eq!(
            row("discovery.k8s.io", "v1", "endpointslices", json!({}))[2..4],
            [json!("<unset>"), json!("<unset>")]
        );

        let ing = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}], "tls": [{"hosts": ["a.example.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}]}}
        });
        assert_eq!(
            row("networking.k8s.io", "v1", "ingresses", ing),
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example.com,b.example.com"),
                json!("203.0.113.5"),
                json!("80, 443"),
                json!("120m")
            ]
        );
        assert_eq!(
            row(
                "networking.k8s.io",
                "v1",
                "ingresses",
                json!({"spec": {"rules": [{}]}})
            )[2..5],
            [json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn nodes_and_namespaces() {
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": "2024-04-21T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "", "kubernetes.io/hostname": "cp-1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "cp-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
            }
        });
        assert_eq!(
            header("", "v1", "nodes"),
            ["Name", "Status", "Roles", "Age", "Version"]
        );
        assert_eq!(
            row("", "v1", "nodes", node),
            vec![
                json!("cp-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd"),
                json!("10d"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0-18-amd64"),
                json!("containerd://1.7.13")
            ]
        );
        let new_node = json!({"metadata": {"name": "n", "labels": {"kubernetes.io/role": "worker"}}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let r = row("", "v1", "nodes", new_node);
        assert_eq!(
            r[1..4],
            [json!("NotReady"), json!("worker"), json!("<unknown>")]
        );
        assert_eq!(r[7], "<unknown>");
        assert_eq!(
            row("", "v1", "nodes", json!({"metadata": {"name": "x"}}))[1..3],
            [json!("Unknown"), json!("<none>")]
        );

        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": "2024-05-01T11:59:59Z"}, "status": {"phase": "Active"}});
        assert_eq!(
            row("", "v1", "namespaces", ns),
            vec![json!("kube-system"), json!("Active"), json!("1s")]
        );
    }

    #[test]
    fn events_both_apis() {
        assert_eq!(
            header("", "v1", "events"),
            ["Last Seen", "Type", "Reason", "Object", "Message"]
        );
        let ev = json!({
            "metadata": {"name": "web-0.17c1", "namespace": "default", "creationTimestamp": "2024-05-01T11:50:00Z"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default", "fieldPath": "spec.containers{nginx}"},
            "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:40:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 12
        });
        assert_eq!(
            row("", "v1", "events", ev),
            vec![
                json!("60s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{nginx}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("20m"),
                json!(12),
                json!("web-0.17c1")
            ]
        );
        // New-style core event: eventTime only, series, reportingComponent.
        let ev = json!({
            "metadata": {"name": "n.1"}, "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "Starting", "type": "Normal", "message": "Starting kubelet.",
            "eventTime": "2024-05-01T11:58:00.123456Z", "reportingComponent": "kubelet", "reportingInstance": "node-1",
            "series": {"count": 3, "lastObservedTime": "2024-05-01T11:59:30.000000Z"}
        });
        let r = row("", "v1", "events", ev);
        assert_eq!(r[0], "30s");
        assert_eq!(r[5], "kubelet, node-1");
        assert_eq!(r[7..9], [json!("119s"), json!(3)]);
        // events.k8s.io/v1 with regarding/note.
        let ev = json!({
            "metadata": {"name": "x.2"}, "regarding": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up replica set web-1 to 3",
            "eventTime": null, "deprecatedFirstTimestamp": "2024-05-01T11:00:00Z", "deprecatedLastTimestamp": "2024-05-01T11:00:00Z",
            "deprecatedCount": 1, "deprecatedSource": {"component": "deployment-controller"}, "reportingController": "deployment-controller"
        });
        let r = row("events.k8s.io", "v1", "events", ev);
        assert_eq!(
            r[..6],
            [
                json!("60m"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller")
            ]
        );
        assert_eq!(r[6], "Scaled up replica set web-1 to 3");
        assert_eq!(
            row("", "v1", "events", json!({}))[..1],
            [json!("<unknown>")]
        );
    }

    #[test]
    fn config_and_identity() {
        let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": "2024-05-01T11:00:00Z"}, "data": {"ca.crt": "..."}, "binaryData": {"b": "AA=="}});
        assert_eq!(
            row("", "v1", "configmaps", cm),
            vec![json!("kube-root-ca.crt"), json!(2), json!("60m")]
        );
        let secret = json!({"metadata": {"name": "tls", "creationTimestamp": "2024-05-01T11:00:00Z"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            row("", "v1", "secrets", secret),
            vec![
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("60m")
            ]
        );
        let sa =
            json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(
            row("", "v1", "serviceaccounts", sa),
            vec![json!("default"), json!(0), json!("60m")]
        );
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": "2024-05-01T11:00:00Z"}, "spec": {"holderIdentity": "cp-1_6a3c"}});
        assert_eq!(
            row("coordination.k8s.io", "v1", "leases", lease),
            vec![json!("kube-scheduler"), json!("cp-1_6a3c"), json!("60m")]
        );
    }

    #[test]
    fn rbac_printers() {
        assert_eq!(
            header("rbac.authorization.k8s.io", "v1", "roles"),
            ["Name", "Created At"]
        );
        let role = json!({"metadata": {"name": "pod-reader", "creationTimestamp": "2024-05-01T10:00:00.5Z"}, "rules": []});
        assert_eq!(
            row("rbac.authorization.k8s.io", "v1", "clusterroles", role),
            vec![json!("pod-reader"), json!("2024-05-01T10:00:00Z")]
        );
        let rb = json!({
            "metadata": {"name": "read-pods", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
                         {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]
        });
        assert_eq!(
            header("rbac.authorization.k8s.io", "v1", "rolebindings"),
            ["Name", "Role", "Age"]
        );
        assert_eq!(
            row("rbac.authorization.k8s.io", "v1", "rolebindings", rb),
            vec![
                json!("read-pods"),
                json!("Role/pod-reader"),
                json!("120m"),
                json!("jane, bob"),
                json!("devs"),
                json!("build/ci")
            ]
        );
        let crb = json!({"metadata": {"name": "cluster-admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "system:masters"}]});
        assert_eq!(
            row(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                crb
            ),
            vec![
                json!("cluster-admin"),
                json!("ClusterRole/cluster-admin"),
                json!("<unknown>"),
                json!(""),
                json!("system:masters"),
                json!("")
            ]
        );
        assert_eq!(
            row(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                json!({"metadata": {"name": "widgets.example.com"}})
            ),
            vec![json!("widgets.example.com"), json!("0001-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn storage_printers() {
        let pv = json!({
            "metadata": {"name": "pv-1", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                     "storageClassName": "standard", "volumeMode": "Filesystem", "claimRef": {"namespace": "default", "name": "data"}},
            "status": {"phase": "Bound"}
        });
        assert_eq!(
            row("", "v1", "persistentvolumes", pv),
            vec![
                json!("pv-1"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("standard"),
                json!("<unset>"),
                json!(""),
                json!("120m"),
                json!("Filesystem")
            ]
        );
        let pvc = json!({
            "metadata": {"name": "data", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, "volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}
        });
        assert_eq!(
            row("", "v1", "persistentvolumeclaims", pvc),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pv-1"),
                json!("10Gi"),
                json!("RWO"),
                json!("standard"),
                json!("<unset>"),
                json!("120m"),
                json!("Filesystem")
            ]
        );
        let pending = json!({"metadata": {"name": "p", "deletionTimestamp": "2024-05-01T12:00:00Z"}, "spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(
            row("", "v1", "persistentvolumeclaims", pending)[1..6],
            [
                json!("Terminating"),
                json!(""),
                json!(""),
                json!(""),
                json!("")
            ]
        );
        let sc = json!({
            "metadata": {"name": "standard", "creationTimestamp": "2024-05-01T10:00:00Z", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"
        });
        assert_eq!(
            row("storage.k8s.io", "v1", "storageclasses", sc),
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("120m")
            ]
        );
        let csi = json!({"metadata": {"name": "ebs.csi.aws.com"}, "spec": {"attachRequired": true, "volumeLifecycleModes": ["Persistent"]}});
        assert_eq!(
            row("storage.k8s.io", "v1", "csidrivers", csi)[1..7],
            [
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("Persistent")
            ]
        );
        let va = json!({"metadata": {"name": "csi-123"}, "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
        assert_eq!(
            row("storage.k8s.io", "v1", "volumeattachments", va)[1..5],
            [
                json!("ebs.csi.aws.com"),
                json!("pv-1"),
                json!("n1"),
                json!(true)
            ]
        );
    }

    #[test]
    fn policy_autoscaling_scheduling_certificates() {
        let pdb = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            row("policy", "v1", "poddisruptionbudgets", pdb),
            vec![
                json!("web"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("60m")
            ]
        );
        let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            row("policy", "v1", "poddisruptionbudgets", pdb)[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );

        let hpa = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}]},
            "status": {"currentReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35, "averageValue": "120m"}}}]}
        });
        assert_eq!(
            row("autoscaling", "v2", "horizontalpodautoscalers", hpa),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 35%/80%, memory: <unknown>/500Mi + 1 more..."),
                json!("2"),
                json!(10),
                json!(3),
                json!("60m")
            ]
        );
        let hpa1 = json!({"metadata": {"name": "w"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}});
        assert_eq!(
            row("autoscaling", "v1", "horizontalpodautoscalers", hpa1)[2..4],
            [json!("cpu: <unknown>/50%"), json!("<unset>")]
        );

        let pc = json!({"metadata": {"name": "system-cluster-critical", "creationTimestamp": "2024-05-01T11:00:00Z"}, "value": 2000000000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            row("scheduling.k8s.io", "v1", "priorityclasses", pc),
            vec![
                json!("system-cluster-critical"),
                json!(2000000000),
                json!(false),
                json!("60m"),
                json!("PreemptLowerPriority")
            ]
        );

        let csr = json!({
            "metadata": {"name": "csr-8x2lq", "creationTimestamp": "2024-05-01T11:59:00Z"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:node-1", "expirationSeconds": 86400, "request": "..."},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}
        });
        assert_eq!(
            row(
                "certificates.k8s.io",
                "v1",
                "certificatesigningrequests",
                csr
            ),
            vec![
                json!("csr-8x2lq"),
                json!("60s"),
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:node-1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let denied = json!({"metadata": {"name": "c"}, "spec": {}, "status": {"conditions": [{"type": "Denied"}, {"type": "Failed"}]}});
        assert_eq!(
            row(
                "certificates.k8s.io",
                "v1",
                "certificatesigningrequests",
                denied
            )[2..],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Denied,Failed")
            ]
        );
    }

    #[test]
    fn misc_printers() {
        let rq = json!({"metadata": {"name": "compute", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "status": {"hard": {"requests.cpu": "4", "limits.memory": "8Gi", "pods": "10"}, "used": {"requests.cpu": "500m", "pods": "3"}}});
        assert_eq!(
            row("", "v1", "resourcequotas", rq),
            vec![
                json!("compute"),
                json!("pods: 3/10, requests.cpu: 500m/4"),
                json!("limits.memory: 0/8Gi"),
                json!("60m")
            ]
        );
        let cr = json!({"metadata": {"name": "web-5d8f", "creationTimestamp": "2024-05-01T11:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
        assert_eq!(
            row("apps", "v1", "controllerrevisions", cr),
            vec![
                json!("web-5d8f"),
                json!("statefulset.apps/web"),
                json!(2),
                json!("60m")
            ]
        );
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            row("", "v1", "componentstatuses", cs),
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
        let np = json!({"metadata": {"name": "deny-all", "creationTimestamp": "2024-05-01T11:00:00Z"}, "spec": {"podSelector": {}}});
        assert_eq!(
            row("networking.k8s.io", "v1", "networkpolicies", np),
            vec![json!("deny-all"), json!("<none>"), json!("60m")]
        );
        let pt = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"b": "2", "a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}});
        assert_eq!(
            row("", "v1", "podtemplates", pt),
            vec![json!("t"), json!("c"), json!("i"), json!("a=1,b=2")]
        );
        let api = json!({"metadata": {"name": "v1beta1.metrics.k8s.io", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            row("apiregistration.k8s.io", "v1", "apiservices", api),
            vec![
                json!("v1beta1.metrics.k8s.io"),
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)"),
                json!("60m")
            ]
        );
        assert_eq!(
            row(
                "apiregistration.k8s.io",
                "v1",
                "apiservices",
                json!({"metadata": {"name": "v1."}})
            )[1..3],
            [json!("Local"), json!("Unknown")]
        );
        let fs = json!({"metadata": {"name": "exempt"}, "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            row("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", fs)[1..],
            [
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("<unknown>"),
                json!("False")
            ]
        );
        let plc = json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            row(
                "flowcontrol.apiserver.k8s.io",
                "v1",
                "prioritylevelconfigurations",
                plc
            )[1..6],
            [
                json!("Limited"),
                json!(100),
                json!(128),
                json!(6),
                json!(50)
            ]
        );
        let vwc = json!({"metadata": {"name": "w"}, "webhooks": [{}, {}]});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "v1",
                "validatingwebhookconfigurations",
                vwc
            )[1],
            2
        );
        let vap = json!({"metadata": {"name": "p"}, "spec": {"validations": [{"expression": "true"}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "v1",
                "validatingadmissionpolicies",
                vap
            )[1..3],
            [json!(1), json!("v1/ConfigMap")]
        );
        let vapb = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}});
        assert_eq!(
            row(
                "admissionregistration.k8s.io",
                "v1",
                "validatingadmissionpolicybindings",
                vapb
            )[1..3],
            [json!("p"), json!("*/cfg")]
        );
        let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            row("networking.k8s.io", "v1", "ingressclasses", ic)[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb")
            ]
        );
        let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert_eq!(row("node.k8s.io", "v1", "runtimeclasses", rc)[1], "runsc");
        let lr =
            json!({"metadata": {"name": "limits", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(
            row("", "v1", "limitranges", lr),
            vec![json!("limits"), json!("2024-05-01T11:00:00Z")]
        );
    }
}
