#pragma once

// Text-to-vector functions for the ChromaDB example. The Chroma server stores
// and searches vectors but does not compute them: the client sends them.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace jobtrack::examples::chroma {

/// Turns text into a vector for Chroma. Implementations must be safe to call
/// from several threads at once (embed is const) and return vectors of
/// dimension() entries for every input.
class EmbeddingFunction {
 public:
  virtual ~EmbeddingFunction() = default;

  /// The vector for one text. May throw what the implementation documents.
  [[nodiscard]] virtual std::vector<float> embed(std::string_view text) const = 0;

  /// Length of every vector embed returns.
  [[nodiscard]] virtual std::size_t dimension() const noexcept = 0;

  /// embed for each text, in order. Throws what embed throws.
  [[nodiscard]] virtual std::vector<std::vector<float>> embedAll(
      std::span<const std::string> texts) const {
    std::vector<std::vector<float>> vectors;
    vectors.reserve(texts.size());
    for (const auto& text : texts) {
      vectors.push_back(embed(text));
    }
    return vectors;
  }

 protected:
  EmbeddingFunction() = default;
  EmbeddingFunction(const EmbeddingFunction&) = default;
  EmbeddingFunction& operator=(const EmbeddingFunction&) = default;
};

/// A deterministic stand-in for a real embedding model, needing no model
/// files: feature hashing of lower-cased word tokens (and, optionally, of
/// each word's character trigrams) into a fixed number of buckets, with a
/// hash-derived sign per feature, L2-normalised.
///
/// Texts sharing words get nearby vectors under Chroma's default squared-L2
/// distance (on unit vectors it equals 2 - 2 * cosine similarity); identical
/// word multisets get identical vectors. It knows nothing of meaning:
/// synonyms are unrelated. Replace it with a real model for real use.
///
/// Tokens are maximal runs of ASCII letters and digits and of non-ASCII bytes
/// (so UTF-8 words stay whole); only ASCII letters are lower-cased. Text
/// without tokens maps to the zero vector. The hash is 64-bit FNV-1a, so the
/// vectors are the same on every platform and run.
///
/// Thread safety: immutable; embed may be called concurrently.
class HashingEmbeddingFunction final : public EmbeddingFunction {
 public:
  /// dimension: number of buckets (256 by default). trigramWeight: weight of
  /// each character-trigram feature relative to a word (1.0); 0 disables
  /// trigrams. Throws std::invalid_argument for dimension 0 or a negative or
  /// non-finite trigramWeight.
  explicit HashingEmbeddingFunction(std::size_t dimension = 256, float trigramWeight = 0.5F)
      : dimension_(dimension), trigramWeight_(trigramWeight) {
    if (dimension_ == 0) {
      throw std::invalid_argument("HashingEmbeddingFunction: dimension must be positive");
    }
    if (!std::isfinite(trigramWeight_) || trigramWeight_ < 0.0F) {
      throw std::invalid_argument(
          "HashingEmbeddingFunction: trigramWeight must be finite and >= 0");
    }
  }

  /// See the class comment. Does not throw except std::bad_alloc.
  [[nodiscard]] std::vector<float> embed(std::string_view text) const override {
    std::vector<float> vector(dimension_, 0.0F);
    forEachToken(text, [&](std::string_view token) {
      addFeature(vector, "w:", token, 1.0F);
      if (trigramWeight_ > 0.0F) {
        // "#word#" so that prefixes and suffixes count as their own trigrams.
        const std::string padded = "#" + std::string(token) + "#";
        for (std::size_t i = 0; i + 3 <= padded.size(); ++i) {
          addFeature(vector, "t:", std::string_view(padded).substr(i, 3), trigramWeight_);
        }
      }
    });
    normalise(vector);
    return vector;
  }

  /// The number of buckets given at construction.
  [[nodiscard]] std::size_t dimension() const noexcept override { return dimension_; }

 private:
  static constexpr std::uint64_t fnvOffset = 14695981039346656037ULL;
  static constexpr std::uint64_t fnvPrime = 1099511628211ULL;

  static std::uint64_t fnv1a(std::string_view prefix, std::string_view token) {
    std::uint64_t hash = fnvOffset;
    for (std::string_view part : {prefix, token}) {
      for (unsigned char c : part) {
        hash ^= c;
        hash *= fnvPrime;
      }
    }
    return hash;
  }

  void addFeature(std::vector<float>& vector, std::string_view kind, std::string_view feature,
                  float weight) const {
    const std::uint64_t hash = fnv1a(kind, feature);
    const auto bucket = static_cast<std::size_t>(hash % dimension_);
    const float sign = (hash >> 63) != 0 ? -1.0F : 1.0F;
    vector[bucket] += sign * weight;
  }

  static void normalise(std::vector<float>& vector) {
    double sumOfSquares = 0.0;
    for (float value : vector) {
      sumOfSquares += static_cast<double>(value) * value;
    }
    if (sumOfSquares == 0.0) {
      return;
    }
    const auto scale = static_cast<float>(1.0 / std::sqrt(sumOfSquares));
    for (float& value : vector) {
      value *= scale;
    }
  }

  static bool isTokenByte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
  }

  template <typename Visitor>
  static void forEachToken(std::string_view text, Visitor&& visit) {
    std::string token;
    for (std::size_t i = 0; i <= text.size(); ++i) {
      const bool inToken = i < text.size() && isTokenByte(static_cast<unsigned char>(text[i]));
      if (inToken) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') {
          c = static_cast<char>(c - 'A' + 'a');
        }
        token += c;
      } else if (!token.empty()) {
        visit(std::string_view(token));
        token.clear();
      }
    }
  }

  std::size_t dimension_;
  float trigramWeight_;
};

}  // namespace jobtrack::examples::chroma
