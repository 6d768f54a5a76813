#include "app.hpp"

#include "hello_controller.hpp"

#include <limits>

namespace jobtrack::examples::http {

App::App(AppOptions options)
    : executor_(options.executor),
      tracker_(executor_, options.tracker, options.store),
      hello_(executor_, tracker_, options.timeScale) {
  addController(
      std::make_unique<SystemController>(executor_, tracker_, httpMetrics_, shutdown_.get_token()));
  addController(std::make_unique<HelloController>(hello_, options.bodyLimits));
  addController(std::make_unique<JobsController>(tracker_, options.jobsApi, shutdown_.get_token()));
}

App::~App() {
  beginShutdown();
  executor_.shutdown();
}

void App::addController(std::unique_ptr<Controller> controller) {
  controller->registerRoutes(router_);
  controllers_.push_back(std::move(controller));
}

Response App::handle(Request request) const { return router_.handle(std::move(request)); }

void App::beginShutdown() {
  if (!shutdown_.request_stop()) return;
  for (const JobStatus status : {JobStatus::Pending, JobStatus::Running}) {
    ListFilter filter;
    filter.status = status;
    filter.localOnly = true;  // with a shared store, other instances' jobs are theirs to keep
    for (const auto& job : tracker_.list(std::numeric_limits<std::size_t>::max(), filter))
      tracker_.cancel(job.id);
  }
}

}  // namespace jobtrack::examples::http
