//! The gRPC services: each method hands its request to the verb's own file.

use crate::pb::{self, image_service_server::ImageService, runtime_service_server::RuntimeService};
use crate::Cri;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct Runtime(pub Arc<Cri>);
pub struct Images(pub Arc<Cri>);

type R<T> = std::result::Result<Response<T>, Status>;

fn ok<T>(r: crate::Result<T>) -> R<T> {
    r.map(Response::new).map_err(|e| {
        tracing::debug!("CRI: {e}");
        Status::from(e)
    })
}

fn unimplemented<T>(what: &str) -> R<T> {
    Err(Status::unimplemented(format!(
        "{what} is not implemented by berth yet"
    )))
}

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(&self, r: Request<pb::VersionRequest>) -> R<pb::VersionResponse> {
        ok(Ok(self.0.version(r.into_inner())))
    }
    async fn run_pod_sandbox(
        &self,
        r: Request<pb::RunPodSandboxRequest>,
    ) -> R<pb::RunPodSandboxResponse> {
        ok(self.0.run_pod(r.into_inner()).await)
    }
    async fn stop_pod_sandbox(
        &self,
        r: Request<pb::StopPodSandboxRequest>,
    ) -> R<pb::StopPodSandboxResponse> {
        ok(self.0.stop_pod(r.into_inner()).await)
    }
    async fn remove_pod_sandbox(
        &self,
        r: Request<pb::RemovePodSandboxRequest>,
    ) -> R<pb::RemovePodSandboxResponse> {
        ok(self.0.remove_pod(r.into_inner()).await)
    }
    async fn pod_sandbox_status(
        &self,
        r: Request<pb::PodSandboxStatusRequest>,
    ) -> R<pb::PodSandboxStatusResponse> {
        ok(self.0.pod_status(r.into_inner()))
    }
    async fn list_pod_sandbox(
        &self,
        r: Request<pb::ListPodSandboxRequest>,
    ) -> R<pb::ListPodSandboxResponse> {
        ok(Ok(self.0.list_pods(r.into_inner())))
    }
    async fn create_container(
        &self,
        r: Request<pb::CreateContainerRequest>,
    ) -> R<pb::CreateContainerResponse> {
        ok(self.0.create_container(r.into_inner()).await)
    }
    async fn start_container(
        &self,
        r: Request<pb::StartContainerRequest>,
    ) -> R<pb::StartContainerResponse> {
        ok(self.0.start_container(r.into_inner()).await)
    }
    async fn stop_container(
        &self,
        r: Request<pb::StopContainerRequest>,
    ) -> R<pb::StopContainerResponse> {
        ok(self.0.stop_container(r.into_inner()).await)
    }
    async fn remove_container(
        &self,
        r: Request<pb::RemoveContainerRequest>,
    ) -> R<pb::RemoveContainerResponse> {
        ok(self.0.remove_container(r.into_inner()).await)
    }
    async fn list_containers(
        &self,
        r: Request<pb::ListContainersRequest>,
    ) -> R<pb::ListContainersResponse> {
        ok(Ok(self.0.list_containers(r.into_inner())))
    }
    async fn container_status(
        &self,
        r: Request<pb::ContainerStatusRequest>,
    ) -> R<pb::ContainerStatusResponse> {
        ok(self.0.container_status(r.into_inner()))
    }
    async fn update_container_resources(
        &self,
        r: Request<pb::UpdateContainerResourcesRequest>,
    ) -> R<pb::UpdateContainerResourcesResponse> {
        ok(self.0.update_resources(r.into_inner()).await)
    }
    async fn reopen_container_log(
        &self,
        r: Request<pb::ReopenContainerLogRequest>,
    ) -> R<pb::ReopenContainerLogResponse> {
        ok(self.0.reopen_log(r.into_inner()).await)
    }
    async fn exec_sync(&self, r: Request<pb::ExecSyncRequest>) -> R<pb::ExecSyncResponse> {
        ok(self.0.exec_sync(r.into_inner()).await)
    }
    async fn exec(&self, r: Request<pb::ExecRequest>) -> R<pb::ExecResponse> {
        ok(self.0.exec(r.into_inner()).await)
    }
    async fn attach(&self, r: Request<pb::AttachRequest>) -> R<pb::AttachResponse> {
        ok(self.0.attach(r.into_inner()).await)
    }
    async fn port_forward(&self, r: Request<pb::PortForwardRequest>) -> R<pb::PortForwardResponse> {
        ok(self.0.port_forward(r.into_inner()).await)
    }
    async fn container_stats(
        &self,
        r: Request<pb::ContainerStatsRequest>,
    ) -> R<pb::ContainerStatsResponse> {
        ok(self.0.container_stats(r.into_inner()).await)
    }
    async fn list_container_stats(
        &self,
        r: Request<pb::ListContainerStatsRequest>,
    ) -> R<pb::ListContainerStatsResponse> {
        ok(self.0.list_container_stats(r.into_inner()).await)
    }
    async fn pod_sandbox_stats(
        &self,
        r: Request<pb::PodSandboxStatsRequest>,
    ) -> R<pb::PodSandboxStatsResponse> {
        ok(self.0.pod_stats(r.into_inner()).await)
    }
    async fn list_pod_sandbox_stats(
        &self,
        r: Request<pb::ListPodSandboxStatsRequest>,
    ) -> R<pb::ListPodSandboxStatsResponse> {
        ok(self.0.list_pod_stats(r.into_inner()).await)
    }
    async fn update_runtime_config(
        &self,
        _r: Request<pb::UpdateRuntimeConfigRequest>,
    ) -> R<pb::UpdateRuntimeConfigResponse> {
        // kubelet sends the pod CIDR here; the CNI configuration already holds it
        ok(Ok(pb::UpdateRuntimeConfigResponse {}))
    }
    async fn status(&self, r: Request<pb::StatusRequest>) -> R<pb::StatusResponse> {
        ok(self.0.status(r.into_inner()))
    }
    async fn checkpoint_container(
        &self,
        _r: Request<pb::CheckpointContainerRequest>,
    ) -> R<pb::CheckpointContainerResponse> {
        unimplemented("CheckpointContainer")
    }
    type GetContainerEventsStream = crate::ctr_events::EventStream;
    async fn get_container_events(
        &self,
        _r: Request<pb::GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        Ok(Response::new(self.0.container_events()))
    }
    async fn list_metric_descriptors(
        &self,
        _r: Request<pb::ListMetricDescriptorsRequest>,
    ) -> R<pb::ListMetricDescriptorsResponse> {
        unimplemented("ListMetricDescriptors")
    }
    async fn list_pod_sandbox_metrics(
        &self,
        _r: Request<pb::ListPodSandboxMetricsRequest>,
    ) -> R<pb::ListPodSandboxMetricsResponse> {
        unimplemented("ListPodSandboxMetrics")
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(&self, r: Request<pb::ListImagesRequest>) -> R<pb::ListImagesResponse> {
        ok(self.0.list_images(r.into_inner()))
    }
    async fn image_status(&self, r: Request<pb::ImageStatusRequest>) -> R<pb::ImageStatusResponse> {
        ok(self.0.image_status(r.into_inner()))
    }
    async fn pull_image(&self, r: Request<pb::PullImageRequest>) -> R<pb::PullImageResponse> {
        ok(self.0.pull_image(r.into_inner()).await)
    }
    async fn remove_image(&self, r: Request<pb::RemoveImageRequest>) -> R<pb::RemoveImageResponse> {
        ok(self.0.remove_image(r.into_inner()).await)
    }
    async fn image_fs_info(
        &self,
        r: Request<pb::ImageFsInfoRequest>,
    ) -> R<pb::ImageFsInfoResponse> {
        ok(self.0.image_fs_info(r.into_inner()).await)
    }
}
