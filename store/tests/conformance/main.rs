//! The store suite: every use case, run against SQLite and against Postgres. The cases live in
//! `lifecycle.rs` (a build from creation to its end), `reads.rs` (what the API and the pages
//! read back), `actions.rs` (approve, cancel one job, re-run, forge statuses), `owners.rs`
//! (leases belong to one runner and its fleets), `files.rs` (artifacts and caches), `races.rs`
//! (concurrent calls that end one lease, in loops), `limits.rs` (a log's cap, dashboard
//! sessions), `logs.rs` (logs in chunks: ranges, numbering, search; their migration) and
//! `gating.rs` (conditions on the context, declines, downstream gates, concurrency groups).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod catalog;
mod deliveries;
mod drivers;
mod files;
mod flow;
mod gating;
mod history;
mod lifecycle;
mod limits;
mod logs;
mod owners;
mod races;
mod reads;
mod retention;
mod retries;
mod schedules;
mod secrets;
mod seed;
mod tls;

use actions::*;
use catalog::*;
use deliveries::*;
use drivers::*;
use files::*;
use gating::*;
use history::*;
use lifecycle::*;
use limits::*;
use logs::*;
use owners::*;
use races::*;
use reads::*;
use retention::*;
use retries::*;
use schedules::*;
use secrets::*;
use seed::*;

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            macro_rules! t {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        super::$name(conveyor_store::testing::$backend().await).await;
                    }
                };
            }
            // Races run on several threads, so the two calls really overlap.
            macro_rules! race {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        super::$name(conveyor_store::testing::$backend().await).await;
                    }
                };
            }
            t!(products_are_registered_and_replaced);
            t!(a_new_build_queues_only_jobs_without_dependencies_and_is_numbered);
            t!(a_job_run_is_claimed_once_and_only_at_its_attempt);
            t!(completing_a_job_unblocks_dependents_with_its_outputs);
            t!(a_failure_skips_dependents_and_fails_the_build_after_the_rest);
            t!(a_failed_job_with_retries_runs_again_at_the_next_attempt);
            t!(a_completion_with_a_lost_lease_is_discarded);
            t!(a_completion_taking_the_next_job_claims_what_it_readies_for_the_runner);
            t!(a_completion_taking_the_next_job_takes_nothing_fenced_out_or_off_its_fleets);
            t!(a_replayed_completion_gets_the_job_run_the_first_one_took);
            t!(an_expired_lease_is_requeued_and_a_runner_lost_too_often_fails_the_job);
            t!(a_successful_build_fires_its_downstream_product_with_the_upstream_outputs);
            t!(a_false_condition_skips_and_a_manual_job_waits);
            t!(cancelling_stops_queued_jobs_and_signals_running_ones);
            t!(log_batches_are_stored_once_and_only_under_a_live_lease);
            t!(builds_are_listed_newest_first_and_filtered);
            t!(pages_are_stable_while_builds_are_added);
            t!(a_builds_chain_is_read_in_two_statements_as_walked_one_by_one);
            t!(lists_filter_by_belt_ref_and_trigger);
            t!(a_belts_latest_build_per_state_is_found_however_old);
            t!(products_are_found_by_their_repositorys_key);
            t!(retention_keeps_the_last_builds_the_young_and_each_states_latest);
            t!(a_seeded_history_reads_back_as_finished_builds_with_jobs_edges_and_logs);
            t!(a_manual_downstream_build_reads_the_upstream_build_its_selector_names);
            t!(forge_builds_are_due_a_report_until_told_and_downstreams_build_their_head);
            t!(one_job_run_reads_back_as_its_build_shows_it);
            t!(approving_a_waiting_manual_job_queues_and_dispatches_it);
            t!(cancelling_one_job_run_skips_its_dependents_and_signals_a_running_one);
            t!(a_rerun_runs_the_same_jobs_at_the_same_commit_and_names_the_build_it_reruns);
            t!(a_builds_edges_its_job_runs_build_and_a_logs_tail_are_read_back);
            t!(a_delivery_is_recorded_with_its_builds_and_a_replay_writes_nothing);
            t!(a_delivery_that_fails_half_way_records_nothing_and_its_redelivery_builds);
            t!(secrets_are_kept_sealed_listed_by_name_and_given_to_jobs_that_name_them);
            t!(a_pull_requests_build_gets_no_secrets_unless_its_product_allows);
            t!(artifacts_are_recorded_under_a_live_lease_and_reach_dependents_and_downstreams);
            t!(caches_are_found_by_key_then_by_name_per_scope_and_evicted_least_recently_used);
            t!(a_runner_claims_only_job_runs_of_its_fleets);
            t!(a_lease_renewed_when_due_is_only_read_until_a_third_of_it_is_spent);
            t!(another_runner_cannot_touch_a_lease_that_is_not_its_own);
            t!(a_handed_back_job_run_is_queued_again_at_once_as_a_lost_attempt);
            race!(two_completions_of_one_lease_settle_it_once);
            race!(a_completion_and_a_reap_of_the_expired_lease_settle_it_once);
            race!(a_completion_and_a_cancel_at_once_finish_the_build_once);
            race!(two_reapers_at_once_requeue_a_lost_job_once);
            race!(a_hand_back_and_a_completion_at_once_settle_once);
            race!(two_runners_claiming_one_message_get_it_once);
            t!(a_log_past_its_cap_ends_in_one_marker_line_and_the_next_attempt_starts_afresh);
            race!(batches_arriving_at_once_never_store_past_the_cap);
            t!(a_session_is_live_until_it_is_ended_or_expires);
            t!(log_lines_are_numbered_across_attempts_and_read_by_range_across_chunks);
            t!(a_completions_lines_are_stored_with_it_once_and_not_when_fenced);
            t!(a_lost_attempts_late_completion_with_lines_is_fenced_out);
            t!(a_search_reads_a_bounded_stretch_and_continues_from_its_next_line);
            t!(a_declined_job_and_one_skipped_by_its_condition_fire_nothing_downstream);
            t!(downstreams_fire_from_jobs_that_ran_and_never_from_a_pull_request);
            t!(a_newer_build_of_a_group_cancels_the_older_and_runs_when_it_has_stopped);
            t!(job_runs_of_one_group_run_one_at_a_time_in_order);
            race!(builds_entering_one_group_at_once_let_exactly_one_run);
            t!(a_schedule_starts_when_first_seen_and_fires_each_tick_once);
            t!(a_late_tick_fires_nothing_and_schedules_keep_their_own_ticks);
            t!(only_products_with_a_schedule_are_read_for_schedules);
            race!(orchestrators_firing_one_tick_at_once_make_one_build);
            t!(definitions_are_saved_by_mode_and_kept_while_resources_use_them);
            t!(each_resource_change_is_a_version_with_the_builds_planned_for_it);
            t!(a_deleted_resource_runs_with_its_last_version_and_its_versions_go);
            t!(a_pipeline_owns_its_products_name_and_a_registered_product_keeps_its_own);
            race!(concurrent_writes_queue_one_create_wins_and_each_update_is_a_version);
            t!(a_driver_instance_registers_as_a_runner_of_its_drivers_queue);
            t!(a_resources_build_keeps_its_resource_and_event_through_a_rerun);
            t!(a_driver_jobs_context_holds_the_outputs_before_it_and_its_lines_keep_labels);
            t!(a_driver_jobs_context_holds_the_outputs_of_the_products_it_takes_as_inputs);
            t!(a_retry_runs_only_the_failed_jobs_and_what_they_skipped_then_fires_downstream);
            t!(a_retried_approved_job_is_not_asked_again_and_condition_skips_stay);
            t!(a_cancelled_build_retries_every_job_it_stopped_and_asks_approval_anew);
            race!(two_retries_at_once_reopen_the_build_once);
            race!(a_retry_and_the_completion_that_ends_the_build_at_once_agree);
        }
    };
}

suite!(sqlite);
suite!(postgres);
