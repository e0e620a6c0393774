//! `GET /api/admin/backup` (admin): a consistent backup of this node, taken
//! at one applied index while writes go on, streamed as it is read
//! ([`crate::backup`] has the format).

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::AppState;
use crate::backup::{take, Member};

pub async fn backup(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.raft.cluster_status().await?;
    let members = status
        .members
        .iter()
        .map(|m| Member {
            id: m.id,
            role: m.role.to_string(),
            raft_addr: m.addr.as_ref().map(|a| a.raft_addr.clone()),
            url: m.addr.as_ref().and_then(|a| a.url.clone()),
        })
        .collect();
    let source = take::Source {
        cluster_id: state.cluster.cluster_id.current(),
        node_id: status.raft.node_id,
        members,
    };
    let (header, chunks) = take::start(state.pool.clone(), source).await?;
    let stream = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/gzip")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"taskraft-backup-{}-{}.gz\"",
                header.applied_index, header.last_seq
            ),
        ))
        .insert_header(("X-Taskraft-Backup-Index", header.applied_index.to_string()))
        .insert_header(("X-Taskraft-Backup-Seq", header.last_seq.to_string()))
        .streaming(stream))
}
