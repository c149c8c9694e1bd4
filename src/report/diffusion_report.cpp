// Reads each run's summary.json (kind = diffusion) and samples.png.
#include "report/diffusion_report.h"

#include <fmt/core.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace attnlab {

namespace {

std::string base64(const std::string& bytes) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 |
                           uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += abc[(v >> s) & 63];
    }
    if (i < bytes.size()) {
        uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        out += abc[(v >> 18) & 63], out += abc[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string escape(const std::string& s) {
    std::string o;
    for (char c : s)
        o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
    return o;
}

}  // namespace

DiffusionSection diffusion_section(const std::string& dir,
                                   const std::vector<std::pair<std::string, std::string>>& runs) {
    DiffusionSection out;
    std::string rows_html, rows_md, grids;
    for (const auto& [name, label] : runs) {
        std::ifstream in(dir + "/" + name + "/summary.json");
        if (!in) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const std::exception&) {
            continue;  // the main report names unreadable summaries
        }
        if (j.value("kind", "") != "diffusion") continue;
        const double fid = j.at("fid").get<double>(), acc = j.at("eval_accuracy").get<double>();
        const double loss = j.at("eval_loss").get<double>();
        const int samples = j.value("eval_samples", 0), steps = j.value("sample_steps", 0);
        const double g = j.value("guidance", 0.0);
        rows_html += fmt::format(
            "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.1f}</td><td>{:.4f}</td>"
            "<td>{} x {} DDIM, g = {}</td></tr>\n",
            escape(name), escape(label), fid, 100 * acc, loss, samples, steps, g);
        rows_md += fmt::format("| {} | {} | {:.2f} | {:.1f} | {:.4f} | {} x {} DDIM, g = {} |\n",
                               name, label, fid, 100 * acc, loss, samples, steps, g);
        std::ifstream png(dir + "/" + name + "/samples.png", std::ios::binary);
        if (png) {
            const std::string bytes{std::istreambuf_iterator<char>(png), {}};
            grids += fmt::format(
                "<figure style=\"display:inline-block;margin:6px\"><img alt=\"samples of {0}\" "
                "src=\"data:image/png;base64,{1}\" style=\"image-rendering:pixelated;width:300px\">"
                "<figcaption>{0}: {2}</figcaption></figure>\n",
                escape(name), base64(bytes), escape(label));
        }
    }
    if (rows_md.empty()) return out;
    const std::string note =
        "FID (attnlab Fashion-MNIST features): the Frechet distance between generated images and "
        "the "
        "10,000 test images in the features of attnlab's own Fashion-MNIST classifier, lower is "
        "better "
        "(not comparable to Inception FIDs). Sample accuracy: how often that classifier names the "
        "class "
        "the image was generated for. Loss: the denoising MSE on fixed test images.";
    out.html = "<h2>FID (attnlab Fashion-MNIST features)</h2>\n<p class=\"note\">" + escape(note) +
               "</p>\n<table>\n<tr><th>run</th><th>values</th><th>FID (lower is better)</th>"
               "<th>sample accuracy %</th><th>loss</th><th>samples</th></tr>\n" +
               rows_html +
               "</table>\n<h2>Samples</h2>\n<p class=\"note\">One row per class, "
               "T-shirt/top at the top to Ankle boot at the bottom.</p>\n" +
               grids;
    out.markdown =
        "\n## FID (attnlab Fashion-MNIST features)\n\n" + note +
        "\n\n| run | values | FID (lower is better) | sample accuracy % | loss | samples |\n"
        "|---|---|---|---|---|---|\n" +
        rows_md;
    for (const auto& [name, label] : runs)
        if (rows_md.find("| " + name + " |") != std::string::npos)
            out.markdown += "\n![" + name + "](" + name + "/samples.png)";
    out.markdown += "\n";
    return out;
}

}  // namespace attnlab
