//! [`Catalog`] over any backend: resource definitions, resources and pipelines, each write
//! in one transaction.

use async_trait::async_trait;

use super::{Backend, SqlStore, Work, builds, definitions, resources};
use crate::catalog::*;
use crate::error::Result;
use crate::types::ProductRecord;

#[async_trait]
impl<B: Backend> Catalog for SqlStore<B> {
    async fn put_definition(
        &self,
        def: &DefinitionRecord,
        mode: Write,
        now: i64,
    ) -> Result<DefinitionRecord> {
        let mut tx = self.backend.begin().await?;
        let saved = definitions::put_definition(&mut *tx, def, mode, now).await?;
        B::commit(tx).await?;
        Ok(saved)
    }

    async fn definition(&self, name: &str) -> Result<Option<DefinitionRecord>> {
        definitions::definition(&mut *self.backend.conn().await?, name).await
    }

    async fn definitions(&self) -> Result<Vec<DefinitionRecord>> {
        definitions::definitions(&mut *self.backend.conn().await?).await
    }

    async fn delete_definition(&self, name: &str) -> Result<bool> {
        let mut tx = self.backend.begin().await?;
        let deleted = definitions::delete_definition(&mut *tx, name).await?;
        B::commit(tx).await?;
        Ok(deleted)
    }

    async fn change_resource(
        &self,
        event: ResourceVerb,
        input: &ResourceInput,
        plan: PlanRuns<'_>,
        now: i64,
    ) -> Result<ResourceChanged> {
        let mut tx = self.backend.begin().await?;
        let mut work = Work::default();
        let (record, builds) =
            resources::change(&mut *tx, event, input, plan, now, &mut work).await?;
        builds::fire_all(&mut *tx, now, &mut work).await?;
        B::commit(tx).await?;
        Ok(ResourceChanged {
            record,
            builds,
            effects: work.effects,
        })
    }

    async fn resource(&self, resource_type: &str, name: &str) -> Result<Option<ResourceRecord>> {
        let mut conn = self.backend.conn().await?;
        resources::resource(&mut *conn, resource_type, name, None).await
    }

    async fn resource_version(
        &self,
        resource_type: &str,
        name: &str,
        version: u64,
    ) -> Result<Option<ResourceRecord>> {
        let mut conn = self.backend.conn().await?;
        resources::resource(&mut *conn, resource_type, name, Some(version)).await
    }

    async fn resources(&self, resource_type: &str) -> Result<Vec<ResourceRecord>> {
        resources::resources(&mut *self.backend.conn().await?, resource_type).await
    }

    async fn put_pipeline(
        &self,
        pipeline: &PipelineRecord,
        product: &ProductRecord,
        mode: Write,
        now: i64,
    ) -> Result<PipelineRecord> {
        let mut tx = self.backend.begin().await?;
        let saved = definitions::put_pipeline(&mut *tx, pipeline, product, mode, now).await?;
        B::commit(tx).await?;
        Ok(saved)
    }

    async fn pipeline(&self, name: &str) -> Result<Option<PipelineRecord>> {
        definitions::pipeline(&mut *self.backend.conn().await?, name).await
    }

    async fn pipelines(&self) -> Result<Vec<PipelineRecord>> {
        definitions::pipelines(&mut *self.backend.conn().await?, None).await
    }

    async fn pipelines_of(&self, resource_type: &str) -> Result<Vec<PipelineRecord>> {
        let mut conn = self.backend.conn().await?;
        definitions::pipelines(&mut *conn, Some(resource_type)).await
    }

    async fn delete_pipeline(&self, name: &str) -> Result<bool> {
        definitions::delete_pipeline(&mut *self.backend.writer().await?, name).await
    }

    async fn put_managed_product(&self, p: &ProductRecord, owner: &str, now: i64) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        definitions::put_managed_product(&mut *tx, p, owner, now).await?;
        B::commit(tx).await
    }

    async fn product_owner(&self, name: &str) -> Result<Option<Option<String>>> {
        definitions::product_owner(&mut *self.backend.conn().await?, name).await
    }
}
